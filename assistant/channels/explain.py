"""A reply's trace as short Markdown for people: the chat's "why this answer" fold, the terminal."""

from __future__ import annotations

from typing import Any


def explain(trace: dict[str, Any], latency_ms: float, model_version: str) -> str:
    intents = " · ".join(f"{i['intent']} {i['probability']:.2f}" for i in trace["intents"])
    lines = [
        f"**Route:** `{trace['route']}`: {trace['reason']}",
        f"**Top intents:** {intents or 'none'}",
        "**Closest past questions:**",
    ]
    lines += [
        f"{rank}. “{source['question']}” (cosine {source['score']:.2f}, {source['intent']})"
        for rank, source in enumerate(trace["sources"], start=1)
    ] or ["none"]
    lines.append("**Checks:**")
    lines += [f"- {check}" for check in trace["checks"]] or ["- none"]
    generation = trace.get("generation")
    if generation:
        verdict = "passed" if generation["verdict"]["passed"] else "failed"
        lines.append(
            f"**Written answer:** {verdict} its check ({generation['verdict']['reason']}); "
            f"the reply used: `{generation['used']}`"
        )
    if trace["slots_found"]:
        lines.append(f"**Details found in the message:** {', '.join(trace['slots_found'])}")
    lines.append(f"*{latency_ms:.0f} ms · {model_version}*")
    return "\n".join(lines)

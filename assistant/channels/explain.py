"""A reply's trace as short Markdown for people: the chat's "why this answer" fold, the terminal.

Every text in a trace may hold other people's words (a customer's, an agent's, a past
answer), so each is shown as plain text (`plain_text`): Markdown or HTML in it reads
literally and never becomes a link, an image or markup. A customer's page is given the
public trace (`assistant.core.trace.public_trace`), whose sources have no texts at all.
"""

from __future__ import annotations

from typing import Any

from assistant.text.plain import plain_text


def explain(trace: dict[str, Any], latency_ms: float, model_version: str) -> str:
    intents = " · ".join(
        f"{plain_text(i['intent'])} {i['probability']:.2f}" for i in trace["intents"]
    )
    lines = [
        f"**Route:** `{trace['route']}`: {plain_text(trace['reason'])}",  # a `Route` name
        f"**Top intents:** {intents or 'none'}",
        "**Closest past questions:**",
    ]
    lines += [_source(rank, source) for rank, source in enumerate(trace["sources"], start=1)] or [
        "none" if trace.get("searched", True) else "not looked for: this route does not use them"
    ]
    lines.append("**Checks:**")
    lines += [f"- {plain_text(check)}" for check in trace["checks"]] or ["- none"]
    generation = trace.get("generation")
    if generation:
        verdict = "passed" if generation["verdict"]["passed"] else "failed"
        lines.append(
            f"**Written answer:** {verdict} its check "
            f"({plain_text(generation['verdict']['reason'])}); "
            f"the reply used: `{generation['used']}`"
        )
    if trace["slots_found"]:
        found = ", ".join(plain_text(slot) for slot in trace["slots_found"])
        lines.append(f"**Details found in the message:** {found}")
    lines.append(f"*{latency_ms:.0f} ms · {plain_text(model_version)}*")
    return "\n".join(lines)


def _source(rank: int, source: dict[str, Any]) -> str:
    """A past question, or, in a public trace, only its intent and score."""
    about = f"cosine {source['score']:.2f}, {plain_text(source['intent'])}"
    if "question" not in source:
        return f"{rank}. a past question ({about})"
    return f"{rank}. “{plain_text(source['question'])}” ({about})"

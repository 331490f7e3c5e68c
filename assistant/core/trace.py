"""A reply's trace: the route and why it won, the intents, the sources and each threshold.

The full trace is logged and read by the agent page, `/api/suggest` and reviews. A
customer sees the public trace (`public_trace`): the same route, reasons, intents and
checks, but of the sources only their intents and scores, since their questions and
answers are other people's words.
"""

from __future__ import annotations

from typing import Any

from assistant.core.types import Decision, IntentPrediction, Reply, Source
from assistant.routing.router import RoutingPolicy


def build_trace(
    decision: Decision,
    prediction: IntentPrediction | None,
    sources: list[Source],
    slots_found: list[str],
    policy: RoutingPolicy,
    searched: bool = True,
) -> dict[str, Any]:
    """Everything needed to see why this reply was given; read by the UI, API and reviews.
    `searched` is False when no rule read the past questions, so none were looked for."""
    intents = prediction.intents if prediction is not None else []
    return {
        "route": decision.route.value,
        "reason": decision.reason,
        "checks": decision.checks,
        "signals": signals(prediction, sources),
        "options": list(decision.options),
        "handoff": decision.handoff.value if decision.handoff else None,
        "intents": [{"intent": s.intent, "probability": round(s.probability, 4)} for s in intents],
        "searched": searched,
        "sources": [
            {
                "question": s.question,
                "answer": s.answer,
                "intent": s.intent,
                "score": round(s.score, 4),
            }
            for s in sources
        ],
        "slots_found": slots_found,
        "asked_for": list(decision.asked_for),
        "thresholds": {
            "intent": policy.intent_threshold,
            "ambiguity_margin": policy.margin,
            "clarify_below": policy.clarify_below,
            "retrieval": policy.retrieval_threshold,
            "familiarity": policy.familiarity_threshold,
        },
    }


def signals(prediction: IntentPrediction | None, sources: list[Source]) -> dict[str, Any]:
    """What the out-of-scope and confidence checks weighed, kept with every reply."""
    intents = list(prediction.intents) if prediction is not None else []
    top = intents[0].probability if intents else None
    runner_up = intents[1].probability if len(intents) > 1 else 0.0
    familiarity = prediction.familiarity if prediction is not None else None
    return {
        "top_probability": None if top is None else round(top, 4),
        "margin": None if top is None else round(top - runner_up, 4),
        "familiarity": None if familiarity is None else round(familiarity, 4),
        "nearest_known_intent": prediction.nearest_intent if prediction is not None else None,
        "closest_past_question": round(sources[0].score, 4) if sources else None,
    }


def public_trace(trace: dict[str, Any]) -> dict[str, Any]:
    """What a customer may see of a trace: no past question or answer, no invented identifier."""
    public = {key: value for key, value in trace.items() if key not in ("sources", "generation")}
    public["sources"] = [
        {"intent": source.get("intent"), "score": source.get("score")}
        for source in trace.get("sources", [])
    ]
    generation = trace.get("generation")
    if generation:
        verdict = generation["verdict"]
        public["generation"] = {
            "verdict": {"passed": verdict["passed"], "reason": verdict["reason"]},
            "used": generation["used"],
        }
        if verdict["passed"]:  # a draft that failed its check may echo past answers
            public["generation"]["written"] = generation["written"]
    return public


def public_reply(reply: Reply) -> dict[str, Any]:
    """A reply as a customer-facing channel sends it: with the public trace."""
    return {**reply.to_dict(), "trace": public_trace(reply.trace)}

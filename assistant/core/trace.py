"""A reply's trace: the route and why it won, the intents, the sources and each threshold.

The chat's "why this answer", the agent page, `/api/suggest` and reviews all read it.
"""

from __future__ import annotations

from typing import Any

from assistant.core.types import Decision, IntentScore, Source
from assistant.routing.router import RoutingPolicy


def build_trace(
    decision: Decision,
    intents: list[IntentScore],
    sources: list[Source],
    slots_found: list[str],
    policy: RoutingPolicy,
) -> dict[str, Any]:
    """Everything needed to see why this reply was given; read by the UI, API and reviews."""
    return {
        "route": decision.route.value,
        "reason": decision.reason,
        "checks": decision.checks,
        "intents": [{"intent": s.intent, "probability": round(s.probability, 4)} for s in intents],
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
            "ambiguity_margin": policy.ambiguity_margin,
            "retrieval": policy.retrieval_threshold,
        },
    }

"""Ranked replies for a person to choose from: the agent page and `POST /api/suggest`.

Built from the same classifier, retriever, templates and router as the bot's own
reply: the router's choice first (unless it would hand off), then the templates
of the top intents and the answers of the closest past questions, best score
first. A template's score is its intent's calibrated probability; a past
answer's is the cosine similarity of its question. Each carries a trace shaped
like a reply's, so the same "why" view explains it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from assistant.core.types import Decision, IntentScore, Route, Source, TurnContext
from assistant.routing.router import Router
from assistant.text.normalise import normalise_message, normalise_text
from assistant.text.slots import extract_slots

if TYPE_CHECKING:
    from assistant.core.pipeline import Assistant
    from assistant.core.registry import Models

CUSTOMER_ROLE = "customer"


@dataclass(frozen=True)
class Suggestion:
    text: str
    route: str
    intent: str | None
    score: float
    sources: list[dict[str, Any]]  # the past Q&A pairs behind it
    trace: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Routes whose reply answers the question, and so can be an agent's suggestion.
ANSWERS = frozenset({Route.TEMPLATE, Route.RETRIEVAL, Route.GENERATE})


def history_slots(history: Iterable[Mapping[str, str]], max_chars: int = 1000) -> dict[str, str]:
    """Details (order number, email) the customer gave earlier; later ones win.
    Each line is normalised and length-checked as a message is (`MessageError`)."""
    slots: dict[str, str] = {}
    for line in history:
        if line.get("role") == CUSTOMER_ROLE:
            slots.update(extract_slots(normalise_text(line.get("text", ""), max_chars)))
    return slots


def suggest(
    assistant: Assistant,
    message: object,
    history: Sequence[Mapping[str, str]] = (),
    count: int = 3,
    models: Models | None = None,
) -> list[Suggestion]:
    """The `count` best replies to `message`; raises `MessageError` for a bad message.

    `history` is the conversation so far, oldest first, as {"role", "text"} with
    role "customer", "bot" or "agent"; the customer's details in it fill templates.
    `models` is the set to suggest with, by default the one serving now.
    """
    from assistant.core.pipeline import drain
    from assistant.core.trace import build_trace

    settings = assistant.settings
    text = normalise_message(message, settings.serving.max_message_chars)
    models = models or assistant.models  # one set throughout, even across a switch
    understood = models.encoder.understand(text)
    prediction, sources = understood.prediction, understood.sources
    intents = prediction.intents
    found = extract_slots(text)
    slots = {**history_slots(history, settings.serving.max_message_chars), **found}
    router = models.router
    context = TurnContext(intents, sources, slots, familiarity=prediction.familiarity)
    chosen = router.decide(context)
    if chosen.route is Route.GENERATE:
        chosen, _ = drain(assistant.write_answer(text, context, chosen, models))
    candidates = [chosen] if chosen.route in ANSWERS else []
    alternatives = [*_template_decisions(router, intents, slots), *_past_answers(sources)]
    candidates += sorted(alternatives, key=lambda d: -_score(d, sources))
    suggestions: list[Suggestion] = []
    for decision in candidates:
        if any(s.text == decision.reply for s in suggestions):
            continue
        trace = build_trace(decision, prediction, sources, sorted(found), router.policy)
        suggestions.append(
            Suggestion(
                decision.reply,
                decision.route.value,
                decision.intent,
                round(_score(decision, sources), 4),
                _supporting(decision, trace["sources"]),
                trace,
            )
        )
        if len(suggestions) == count:
            break
    return suggestions


def _template_decisions(
    router: Router, intents: Sequence[IntentScore], slots: dict[str, str]
) -> Iterable[Decision]:
    """Each top intent's template, filled, or asking for the detail it lacks."""
    policy, templates = router.policy, router.templates
    for scored in intents:
        template = templates.get(scored.intent)
        if template is None or scored.intent in policy.handoff_intents:
            continue
        missing = template.missing(slots)
        reply = templates.prompt_for(missing[0]) if missing else template.fill(slots)
        yield Decision(
            Route.TEMPLATE,
            reply,
            scored.intent,
            scored.probability,
            f"template of intent {scored.intent} (p={scored.probability:.3f})"
            + (f"; asks for {missing[0]}" if missing else ""),
            asked_for=tuple(missing),
        )


def _past_answers(sources: Sequence[Source]) -> Iterable[Decision]:
    for source in sources:
        yield Decision(
            Route.RETRIEVAL,
            source.answer,
            source.intent,
            source.score,
            f"the agent's answer to a past question (cosine {source.score:.3f})",
        )


def _score(decision: Decision, sources: Sequence[Source]) -> float:
    """Templates: the intent's probability. Past answers: the question's cosine similarity."""
    if decision.route is Route.RETRIEVAL:
        return next((s.score for s in sources if s.answer == decision.reply), decision.confidence)
    return decision.confidence


def _supporting(decision: Decision, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A past answer's own Q&A pair; for a template, the retrieved pairs of its intent."""
    if decision.route is Route.RETRIEVAL:
        return [s for s in sources if s["answer"] == decision.reply][:1]
    return [s for s in sources if s["intent"] == decision.intent]

"""Not knowing, handled as a good support bot does: refuse, ask, and only then hand off.

This is the two-stage fallback of Rasa and the no-match handling of Dialogflow:

- a message out of scope (unlike anything the assistant knows) gets a polite
  refusal that says what it can help with, and the bot keeps the conversation;
- a message in the domain that it is unsure of gets a clarifying question
  offering the two likeliest intents, as quick replies in the web chat;
- only after `misunderstood_before_handoff` such messages running does it hand
  the conversation to a person. Refusals do not count toward that, and neither
  does a message repeated word for word: spam and garbage have no in-domain
  signal, so they never reach the agents' queue.

Every text is a company's own, under "messages" in templates.json; the names
shown for intents are under "intent_names" (else the intent's label, spelled out).
"""

from __future__ import annotations

from dataclasses import replace

from assistant.core.records import HandoffKind
from assistant.core.types import Decision, IntentScore, Route, TurnContext
from assistant.routing.templates import TemplateBook

DEFAULT_REFUSAL = (
    "Sorry, that's outside what I can help with here. I can answer questions about "
    "orders, delivery, returns, refunds, payments and accounts. If you'd like a person "
    'to help, press "Talk to a person".'
)
DEFAULT_CLARIFY = "Sorry, I'm not sure I understood. Did you mean {options}?"
DEFAULT_CLARIFY_ONE = "Sorry, I'm not sure I understood. Did you mean {option}?"
DEFAULT_MISUNDERSTOOD = (
    "I'm sorry I haven't been able to understand. I'm passing our conversation to a "
    "member of our support team, who will reply here."
)
DEFAULT_ALWAYS_HUMAN = (
    "Thank you for telling us. A member of our support team will take this from here "
    "and reply in this chat."
)
CLARIFY_OPTIONS = 2


def intent_name(templates: TemplateBook, intent: str) -> str:
    """How an intent is offered to a customer: its configured name, or its label spelled out."""
    names = templates.intent_names
    return names.get(intent) or intent.replace("_", " ").capitalize()


def refusal(
    templates: TemplateBook, context: TurnContext, reason: str, checks: list[str]
) -> Decision:
    top = context.intents[0] if context.intents else None
    return Decision(
        Route.REFUSE,
        templates.messages.get("out_of_scope", DEFAULT_REFUSAL),
        top.intent if top else None,
        top.probability if top else 0.0,
        reason,
        checks,
    )


def clarification(
    templates: TemplateBook,
    intents: list[IntentScore],
    reason: str,
    checks: list[str],
    answerable: frozenset[str],
) -> Decision:
    """A question offering the likeliest intents the assistant can answer."""
    offered = [s for s in intents if s.intent in answerable][:CLARIFY_OPTIONS]
    options = tuple(intent_name(templates, s.intent) for s in offered)
    if len(options) >= 2:
        quoted = " or ".join(f'"{option}"' for option in options)
        text = templates.messages.get("clarify", DEFAULT_CLARIFY).format(options=quoted)
    elif options:
        text = templates.messages.get("clarify_one", DEFAULT_CLARIFY_ONE).format(
            option=f'"{options[0]}"'
        )
    else:
        text = templates.messages.get("low_confidence", DEFAULT_CLARIFY.format(options="..."))
    top = intents[0] if intents else None
    return Decision(
        Route.CLARIFY,
        text,
        top.intent if top else None,
        top.probability if top else 0.0,
        reason,
        checks,
        options=options,
    )


def escalate(
    decision: Decision, context: TurnContext, limit: int, templates: TemplateBook
) -> Decision:
    """A clarifying question that would be the `limit`-th misunderstanding running becomes
    a handoff. A repeated message is not counted (see `misunderstood_after`)."""
    if decision.route is not Route.CLARIFY or misunderstood_after(decision, context) < limit:
        return decision
    return replace(
        decision,
        route=Route.HANDOFF,
        reply=templates.messages.get("misunderstood", DEFAULT_MISUNDERSTOOD),
        reason=f"{limit} messages running were not understood ({decision.reason})",
        options=(),
        handoff=HandoffKind.MISUNDERSTOOD,
    )


def misunderstood_after(decision: Decision, context: TurnContext) -> int:
    """The count of in-domain messages running not understood, once this one is answered:
    one more for a clarifying question (unless the message repeats the last one), the
    same for a refusal (no in-domain signal either way), back to 0 for anything else."""
    if decision.route is Route.CLARIFY:
        return context.misunderstood + (0 if context.repeated else 1)
    if decision.route is Route.REFUSE:
        return context.misunderstood
    return 0


def always_human(
    templates: TemplateBook, top: IntentScore, checks: list[str], intents: frozenset[str]
) -> Decision | None:
    if top.intent not in intents:
        return None
    template = templates.get(top.intent)
    reply = templates.messages.get("always_human", DEFAULT_ALWAYS_HUMAN)
    if template is not None and not template.slots:
        reply = f"{template.text} {reply}"
    return Decision(
        Route.HANDOFF,
        reply,
        top.intent,
        top.probability,
        f"{top.intent} is always handled by a person",
        checks,
        handoff=HandoffKind.ALWAYS_HUMAN,
    )

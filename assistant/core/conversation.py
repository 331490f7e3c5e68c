"""What a conversation says and remembers around the pipeline's decision: the state after
a turn, the turns the support team answers, and the replies for when people have it."""

from __future__ import annotations

import hashlib

from assistant.core.records import ConversationState, ConversationStatus, TurnRecord
from assistant.core.types import Decision, Reply, Route, TurnContext
from assistant.routing.fallback import misunderstood_after
from assistant.staff.availability import NO_AGENT, OUTSIDE_HOURS

# Slot values that are personal data are used within a turn but never remembered.
PERSONAL_SLOTS = frozenset({"email"})
PRESSED_FOR_PERSON = "(pressed \u201cTalk to a person\u201d)"
# Told to a customer handed off when no one can take the conversation; templates.json's
# "messages" may replace each.
NO_ONE_REPLIES = {
    OUTSIDE_HOURS: (
        "Our support team is outside its opening hours right now. If you leave your email "
        "address here, a member of the team will contact you as soon as they're back."
    ),
    NO_AGENT: (
        "No one from our support team is available right now. If you leave your email "
        "address here, a member of the team will contact you as soon as possible."
    ),
}
CONTACT_SAVED_REPLY = (
    "Thank you, we'll contact you at that address. You can keep writing here, and a member "
    "of our support team will read everything."
)
WITH_PEOPLE_REPLIES = {
    ConversationStatus.WAITING: (
        "You're in the queue for a member of our support team, who will reply here shortly."
    ),
    ConversationStatus.WITH_AGENT: (
        "A member of our support team has your conversation and will reply here."
    ),
}


def people_record(
    text: str,
    conversation_id: str,
    state: ConversationState,
    status: ConversationStatus,
    model_version: str,
    latency_ms: float,
) -> TurnRecord:
    """The turn of a message the support team answers: kept for them, the state unchanged."""
    reason = f"the conversation is {status.value.replace('_', ' ')}: the support team answers"
    trace = {
        "route": Route.AGENT.value,
        "reason": reason,
        "checks": [],
        "intents": [],
        "sources": [],
        "slots_found": [],
        "asked_for": [],
    }
    return TurnRecord(
        conversation_id=conversation_id,
        user_text=text,
        reply_text=WITH_PEOPLE_REPLIES[status],
        route=Route.AGENT.value,
        intent=None,
        confidence=0.0,
        reason=reason,
        sources=[],
        trace=trace,
        latency_ms=latency_ms,
        model_version=model_version,
        next_state=state,
    )


def reply_to(record: TurnRecord, turn_id: int, status: ConversationStatus) -> Reply:
    """The customer's reply for a turn the support team answers."""
    return Reply(
        record.reply_text,
        record.route,
        None,
        0.0,
        record.conversation_id,
        turn_id,
        record.trace,
        record.latency_ms,
        record.model_version,
        status.value,
    )


def next_state(
    decision: Decision, slots: dict[str, str], context: TurnContext, digest: str | None
) -> ConversationState:
    """What the conversation remembers after this turn: the slots (never personal ones),
    the intent whose slot was asked for, the misunderstandings running, and whether an
    email address was asked for because no one could take a handoff."""
    remembered = {name: value for name, value in slots.items() if name not in PERSONAL_SLOTS}
    handoff = decision.route is Route.HANDOFF
    pending = decision.intent if decision.asked_for and not handoff else None
    return ConversationState(
        pending,
        remembered,
        misunderstood=0 if handoff else misunderstood_after(decision, context),
        last_digest=digest,
        awaiting_contact=handoff and "email" in decision.asked_for,
    )


def repeat_form(text: str) -> str:
    """A message as compared for a repeat: any case, any spacing."""
    return " ".join(text.casefold().split())


def message_digest(text: str) -> str:
    """A short fingerprint of a message, to tell one repeated word for word (any case)."""
    return hashlib.sha256(repeat_form(text).encode()).hexdigest()[:16]

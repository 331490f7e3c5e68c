"""The records of a conversation: who answers it, what it remembers, what was logged.

These are the words the conversation log's seams speak (`assistant.core.seams`), so the
pipeline, the agent desk and analytics share them whatever store sits behind them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assistant.core.errors import RequestKeyReused


class ConversationStatus(StrEnum):
    """Who answers the customer: the bot, or (once handed off) a person."""

    BOT = "bot"
    WAITING = "waiting"  # handed off, no agent has taken it yet
    WITH_AGENT = "with_agent"
    RESOLVED = "resolved"  # an agent closed it; the bot answers again

    @property
    def with_people(self) -> bool:
        return self in (ConversationStatus.WAITING, ConversationStatus.WITH_AGENT)


class ActionKind(StrEnum):
    TAKEN = "taken"
    REPLY_SENT = "reply_sent"  # the agent's own words
    SUGGESTION_USED = "suggestion_used"  # a suggested reply sent as it was
    SUGGESTION_EDITED = "suggestion_edited"
    INTENT_CORRECTED = "intent_corrected"
    RESOLVED = "resolved"


class Author(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


class HandoffKind(StrEnum):
    """Why a conversation was handed to a person, most urgent first (the queue's order)."""

    ASKED = "asked_for_person"  # in words, or with the chat's "talk to a person" control
    ALWAYS_HUMAN = "always_human"  # an intent the company always leaves to people
    MISUNDERSTOOD = "misunderstood"  # the bot failed to understand several messages running

    @property
    def priority(self) -> int:
        return list(HandoffKind).index(self)


class QueueKind(StrEnum):
    HANDOFF = "handoff"
    THUMBS_DOWN = "thumbs_down"
    LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True)
class Conversation:
    id: str
    status: ConversationStatus
    handoff_reason: str | None
    handoff_at: str | None
    assigned_to: str | None
    resolved_at: str | None
    handoff_kind: HandoffKind | None = None
    contact: str | None = None  # an email address the customer left, for the agents only


@dataclass(frozen=True)
class QueueItem:
    """One thing for the support team to look at, and why it is in the queue."""

    kind: QueueKind
    why: str
    conversation_id: str
    turn_id: int | None
    status: ConversationStatus
    assigned_to: str | None
    user_text: str | None
    since: str  # when it entered the queue


@dataclass(frozen=True)
class ConversationState:
    """What a conversation remembers between turns."""

    pending_intent: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    misunderstood: int = 0  # consecutive in-domain messages the bot did not understand
    last_digest: str | None = None  # of the last message, to tell a repeated one
    awaiting_contact: bool = False  # asked for an email address because no one is available


@dataclass(frozen=True)
class RequestKey:
    """A client's idempotency key for one request, as the log keeps it: the key's hash, and
    a digest of what was asked (the conversation and the message), so that a retry is
    answered with the turn already logged and the same key with another request refused."""

    key_hash: str
    request_digest: str

    @classmethod
    def of(cls, key: str, conversation_id: str | None, message: object) -> RequestKey:
        asked = json.dumps([conversation_id, message], ensure_ascii=False, default=str)
        return cls(_sha256(key), _sha256(asked))

    def require_request(self, logged_digest: str | None) -> None:
        """Raise `RequestKeyReused` unless the turn logged with this key was for this
        request."""
        if logged_digest != self.request_digest:
            raise RequestKeyReused("this Idempotency-Key was sent with another request")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TurnRecord:
    conversation_id: str
    user_text: str
    reply_text: str
    route: str
    intent: str | None
    confidence: float
    reason: str
    sources: list[dict[str, Any]]
    trace: dict[str, Any]
    latency_ms: float
    model_version: str
    next_state: ConversationState = field(default_factory=ConversationState)
    handoff_reason: str | None = None  # set: the conversation joins the agent queue
    handoff_kind: HandoffKind | None = None  # with a handoff reason: its kind, for the order
    request: RequestKey | None = None  # the client's idempotency key, when it sent one

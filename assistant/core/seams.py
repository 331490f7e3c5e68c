"""The declared seams: what the pipeline needs of each concern, and nothing more.

Each is a `typing.Protocol`, so any class with these members fits; the concrete
class serving each role is named in the `[components]` settings section (see
`assistant.core.components`). A class named there is built with
`from_settings(settings, version, previous)`: `version` is the model version to
load (None: the live one) and `previous` the instance it replaces on a hot
reload, whose heavy parts (an encoder, say) it may reuse.

The conversation log is split by role: what the pipeline writes (`TurnLog`),
what the agent desk does (`AgentDesk`) and what analytics and export read
(`LogReader`). The SQLite store plays all three.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from assistant.core.records import (
    Conversation,
    ConversationState,
    ConversationStatus,
    QueueItem,
    RequestKey,
    TurnRecord,
)
from assistant.core.types import IntentPrediction, Reply, Source


class Thresholds(Protocol):
    """The fallback chosen on validation data when a classifier was trained."""

    threshold: float  # the top intent's probability must reach this...
    margin: float  # ...and lead the runner-up by this much
    per_intent: dict[str, float]  # thresholds that differ by intent
    familiarity: float  # the nearest known example's cosine must reach this (-1: unmeasured)


@runtime_checkable
class IntentClassifier(Protocol):
    """Scores a message's intents, best first, with calibrated probabilities."""

    labels: list[str]  # every intent it knows (the agent page offers them as corrections)

    @property
    def version(self) -> str: ...

    @property
    def rejection(self) -> Thresholds:
        """The fallback threshold and margin chosen when it was trained."""
        ...

    def assess(self, texts: Sequence[str], top_k: int = 3) -> list[IntentPrediction]:
        """The `top_k` intents of each text and how familiar it is (see `IntentPrediction`)."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """Finds past questions close to a message, and embeds texts for the grounding check."""

    @property
    def version(self) -> str: ...

    def search(self, texts: Sequence[str], k: int = 3) -> list[list[Source]]: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text."""
        ...


class WritingLimits(Protocol):
    context_answers: int  # how many past answers the prompt holds


@runtime_checkable
class AnswerWriter(Protocol):
    """Writes an answer from the closest past answers, a piece at a time."""

    limits: WritingLimits
    grounding_threshold: float  # how close to a past answer a written one must be
    relevance_threshold: float | None  # how close to the question (None: not checked)

    @property
    def version(self) -> str: ...

    def stream(
        self, question: str, contexts: Sequence[str], stop: threading.Event | None = None
    ) -> Iterator[str]: ...

    def generate(self, question: str, contexts: Sequence[str]) -> str: ...


class Staffing(Protocol):
    """Whether a person can take a handed-off conversation now."""

    def unavailable(self) -> str | None:
        """None when someone can; else why not, as a `messages` key of templates.json
        ("outside_hours" or "no_agent")."""
        ...


@runtime_checkable
class TurnLog(Protocol):
    """What the pipeline writes: conversations, their state, turns and feedback."""

    def start_conversation(self, channel: str = "chat") -> str: ...

    def state(self, conversation_id: str) -> ConversationState: ...

    def status(self, conversation_id: str) -> ConversationStatus: ...

    def opening(self, conversation_id: str) -> tuple[ConversationState, ConversationStatus]:
        """What a turn starts from: `state` and `status` in one read."""
        ...

    def log_turn(self, record: TurnRecord) -> int: ...

    def answered(self, request: RequestKey) -> Reply | None:
        """The reply already logged for this idempotency key, or None; `RequestKeyReused`
        when the key was logged with another request."""
        ...

    def save_contact(self, conversation_id: str, email: str) -> None:
        """Keep the address a customer left to be contacted on (protected at rest)."""
        ...

    def log_bot_turn(
        self, record: TurnRecord, instead: Callable[[ConversationStatus], TurnRecord]
    ) -> tuple[int, ConversationStatus]:
        """Log the bot's turn, or `instead(status)` if people have the conversation by the
        write (read in the write's transaction); returns the turn id and that status."""
        ...

    def add_feedback(
        self, turn_id: int, conversation_id: str, rating: int, comment: str | None = None
    ) -> int:
        """One rating per turn; a turn of another conversation is `UnknownTurn`."""
        ...


@runtime_checkable
class AgentDesk(Protocol):
    """What the support team does: the queue, the transcript, and acting on a conversation."""

    def queue(self, low_confidence_below: float = 0.5, limit: int = 100) -> list[QueueItem]: ...

    def conversation(self, conversation_id: str) -> Conversation: ...

    def history(self, conversation_id: str) -> list[dict[str, Any]]: ...

    def messages_since(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]: ...

    def actions(self, conversation_id: str) -> list[dict[str, Any]]: ...

    def handoff(self, conversation_id: str, reason: str) -> None: ...

    def take(self, conversation_id: str, agent: str) -> None: ...

    def agent_reply(
        self,
        conversation_id: str,
        agent: str,
        text: str,
        suggestion: str | None = None,
        turn_id: int | None = None,
        suggestion_info: dict[str, Any] | None = None,
    ) -> int: ...

    def correct_intent(self, turn_id: int, agent: str, intent: str) -> int: ...

    def resolve(self, conversation_id: str, agent: str) -> None: ...

    def review_answer(
        self,
        message_id: int,
        reviewer: str,
        approved: bool,
        question: str | None = None,
        answer: str | None = None,
    ) -> int:
        """Approve an agent's reply for reuse (as the Q&A pair given) or reject it."""
        ...

    def answers_to_review(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def reviews(self, message_id: int) -> list[dict[str, Any]]: ...


@runtime_checkable
class LogReader(Protocol):
    """What analytics, export and reviews read."""

    def turns(self, conversation_id: str) -> list[dict[str, Any]]: ...

    def turn(self, turn_id: int) -> dict[str, Any]: ...

    def feedback(self, turn_id: int) -> list[dict[str, Any]]: ...

    def feedback_history(self, turn_id: int) -> list[dict[str, Any]]: ...

    def turn_facts(self, since: str | None = None) -> list[dict[str, Any]]: ...

    def conversation_facts(self, since: str | None = None) -> list[dict[str, Any]]: ...


@runtime_checkable
class StaffSignIns(Protocol):
    """The staff pages' sessions and failed sign-ins, where every server sees them. Times
    are Unix seconds."""

    def open_session(
        self, token: str, name: str, page: str, now: float, lifetime: float
    ) -> None: ...

    def session_user(self, token: str, page: str, issued_after: float) -> str | None: ...

    def anyone_signed_in(self, page: str, issued_after: float) -> bool: ...

    def end_session(self, token: str) -> None: ...

    def end_sessions_of(self, name: str) -> None: ...

    def reserve_sign_in(self, name: str, now: float, window: float, limit: int) -> bool:
        """Count an attempt as failed before it is checked; False, with nothing counted,
        when `limit` failed within `window` seconds already."""
        ...

    def clear_sign_in_failures(self, name: str) -> None: ...

    def sign_in_failures(self, name: str, since: float) -> tuple[int, float | None]:
        """How many attempts by `name` failed after `since`, and when the oldest did."""
        ...


class ConversationLog(TurnLog, AgentDesk, LogReader, Protocol):
    """A store that plays every role of the log, as the configured `conversation_log` must.
    One that is also `StaffSignIns` keeps the staff pages' sign-ins for every server."""

    def close(self) -> None: ...

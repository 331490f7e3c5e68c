"""The vocabulary every concern speaks: intent scores, sources, routes, decisions and replies.

A reply reaches a channel as a stream of events (`ReplyEvent`): zero or more text
pieces (`str`) of an answer being written, then exactly one final `Reply`, which
holds the text that stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from assistant.core.records import ConversationStatus, HandoffKind


class Route(StrEnum):
    """How a customer message was answered; the log, metrics and export read the same names."""

    TEMPLATE = "template"
    RETRIEVAL = "retrieval"
    GENERATE = "generate"
    REFUSE = "refuse"  # out of scope: a polite refusal saying what it can help with
    CLARIFY = "clarify"  # in domain but unsure: a question offering the likeliest intents
    HANDOFF = "handoff"
    AGENT = "agent"  # the conversation is with the support team: the bot only logs it


@dataclass(frozen=True)
class IntentScore:
    intent: str
    probability: float


@dataclass(frozen=True)
class IntentPrediction:
    """The classifier's view of one message: its intents, and how familiar the message is."""

    intents: list[IntentScore]  # best first, calibrated probabilities
    familiarity: float | None = None  # cosine to the nearest example learned; None: unmeasured
    nearest_intent: str | None = None  # that example's intent


@dataclass(frozen=True)
class Source:
    """A historical Q&A pair found by the retriever."""

    question: str
    answer: str
    intent: str
    score: float


class SearchedOnRead(Sequence[Source]):
    """A message's closest past questions, searched the first time they are read.

    Most replies are a confident intent's template, and no rule before that one reads
    the past questions; searching only when a rule does saves those replies a pass
    through the sentence encoder.
    """

    def __init__(self, search: Callable[[], Sequence[Source]]) -> None:
        self._search = search
        self._found: Sequence[Source] | None = None

    @property
    def searched(self) -> bool:
        return self._found is not None

    def found(self) -> list[Source]:
        """The past questions if they were searched, else none; never searches."""
        return list(self._found or [])

    def _sources(self) -> Sequence[Source]:
        if self._found is None:
            self._found = self._search()
        return self._found

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # int or slice, as list's
        return self._sources()[index]

    def __len__(self) -> int:
        return len(self._sources())


@dataclass(frozen=True)
class TurnContext:
    """What the router knows about one message."""

    intents: Sequence[IntentScore]  # best first
    sources: Sequence[Source]  # best first
    slots: dict[str, str]  # found in this message or remembered from the conversation
    pending_intent: str | None = None  # the previous turn asked for a slot of this intent
    familiarity: float | None = None  # see `IntentPrediction`
    misunderstood: int = 0  # consecutive misunderstood in-domain messages before this one
    repeated: bool = False  # this message repeats the conversation's last one


@dataclass(frozen=True)
class Fallback:
    """What replaces a written answer that fails its checks, decided with the generate route."""

    route: Route
    reply: str
    reason: str  # follows "the generated answer failed its check (why)" or "no answer..."
    checks: list[str] = field(default_factory=list)
    options: tuple[str, ...] = ()  # a clarifying question's choices


@dataclass(frozen=True)
class Decision:
    route: Route
    reply: str
    intent: str | None
    confidence: float
    reason: str
    checks: list[str] = field(default_factory=list)  # the threshold comparisons made
    asked_for: tuple[str, ...] = ()  # slots the reply asks the customer for
    fallback: Fallback | None = None  # the generate route: what stands if the answer fails
    options: tuple[str, ...] = ()  # a clarifying question's choices, as the customer sees them
    handoff: HandoffKind | None = None  # the handoff route: why, for the queue's order

    def settle(self, answer: str, passed: bool, why: str, written: bool = True) -> Decision:
        """This generate decision once its answer is written and checked: the answer if it
        passed, else the fallback decided with it (also when, not `written`, no answer could
        be written). Nothing goes back to the router."""
        if self.fallback is None:
            raise ValueError("only a generate decision with a fallback can be settled")
        checks = [*self.checks, f"generated answer: {why}"]
        if passed:
            return replace(self, reply=answer, checks=checks, fallback=None)
        fallback = self.fallback
        return replace(
            self,
            route=fallback.route,
            reply=fallback.reply,
            reason=(
                f"the generated answer failed its check ({why}){fallback.reason}"
                if written
                else f"no answer was written ({why}){fallback.reason}"
            ),
            checks=[*checks, *fallback.checks],
            fallback=None,
            options=fallback.options,
        )


@dataclass(frozen=True)
class Reply:
    text: str
    route: str
    intent: str | None
    confidence: float
    conversation_id: str
    turn_id: int
    trace: dict[str, Any]
    latency_ms: float
    model_version: str
    status: str = ConversationStatus.BOT.value  # who answers next: see `ConversationStatus`
    options: list[str] = field(default_factory=list)  # quick replies the customer may send

    def to_dict(self) -> dict[str, Any]:
        return {"reply": self.text, **{k: v for k, v in asdict(self).items() if k != "text"}}


# One event of a reply stream: a provisional piece of a written answer, or the final reply.
ReplyEvent = str | Reply

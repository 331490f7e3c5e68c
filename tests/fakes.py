"""Small stand-ins for the seams (`assistant.core.seams`), for tests that are not about them.

Each fits its seam by shape and can be named in the `[components]` settings like a
real class (`"tests.fakes:KeywordClassifier"`), so the router, the pipeline, the
API and the pages can be exercised without training a model.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.errors import (
    RequestAnswered,
    UnknownConversation,
    UnknownTurn,
)
from assistant.core.records import ConversationState, ConversationStatus, RequestKey, TurnRecord
from assistant.core.settings import Settings
from assistant.core.types import IntentPrediction, IntentScore, Reply, Source

# Which words point at which intent, for `KeywordClassifier`.
KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "order_status": ("order", "parcel", "package", "track"),
    "shipping_cost": ("shipping", "delivery", "postage"),
    "return_policy": ("return", "refund", "send back"),
    "greeting": ("hello", "hi", "hey"),
    "human_agent": ("human", "person", "agent"),
}
PAST_ANSWERS = (
    Source("How much is shipping?", "Standard shipping is free over $50.", "shipping_cost", 0.0),
    Source("Do you offer gift wrapping?", "Yes, gift wrapping is $3.", "gift_wrap", 0.0),
)


@dataclass(frozen=True)
class FixedThresholds:
    threshold: float = 0.5
    margin: float = 0.1
    per_intent: dict[str, float] = field(default_factory=dict)
    familiarity: float = 0.5


class KeywordClassifier:
    """An intent classifier that counts keywords: sure when one intent's words appear,
    unsure of everything when none does, and then it finds the message unfamiliar."""

    def __init__(self, version: str = "keywords-1") -> None:
        self.labels = [*KEYWORDS, "out_of_scope"]
        self._version = version
        self.rejection = FixedThresholds()

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> KeywordClassifier:
        return cls(version or "keywords-1")

    @property
    def version(self) -> str:
        return self._version

    def assess(self, texts: Sequence[str], top_k: int = 3) -> list[IntentPrediction]:
        return [self._assess(text, top_k) for text in texts]

    def _assess(self, text: str, top_k: int) -> IntentPrediction:
        scores = self._scores(text)
        familiar = scores[0].intent in KEYWORDS and scores[0].probability > 1 / len(self.labels)
        return IntentPrediction(scores[:top_k], 1.0 if familiar else 0.0, scores[0].intent)

    def _scores(self, text: str) -> list[IntentScore]:
        words = text.lower()
        hits = {intent: sum(w in words for w in ws) for intent, ws in KEYWORDS.items()}
        total = sum(hits.values())
        if total == 0:  # no idea: every label equally likely
            return [IntentScore(label, 1 / len(self.labels)) for label in self.labels]
        scores = [IntentScore(intent, 0.9 * hits[intent] / total + 0.02) for intent in KEYWORDS]
        return sorted(scores, key=lambda s: -s.probability)


class WordOverlapRetriever:
    """A retriever over a few past answers, scored by shared words (Jaccard)."""

    def __init__(self, sources: Sequence[Source] = PAST_ANSWERS, version: str = "overlap-1"):
        self.sources = list(sources)
        self._version = version

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> WordOverlapRetriever:
        return cls(version=version or "overlap-1")

    @property
    def version(self) -> str:
        return self._version

    def search(self, texts: Sequence[str], k: int = 3) -> list[list[Source]]:
        return [self._closest(text)[:k] for text in texts]

    def _closest(self, text: str) -> list[Source]:
        words = _words(text)
        scored = [
            replace(s, score=len(words & _words(s.question)) / len(words | _words(s.question)))
            for s in self.sources
        ]
        return sorted(scored, key=lambda s: -s.score)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Hashed bags of words, unit length."""
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _words(text):
                vectors[row, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-9)


class MemoryLog:
    """The pipeline's side of the log (`TurnLog`) in memory, with the turns to read back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.states: dict[str, ConversationState] = {}
        self.statuses: dict[str, ConversationStatus] = {}
        self.records: list[tuple[int, TurnRecord]] = []
        self.ratings: dict[int, list[int]] = {}
        self.contacts: dict[str, str] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> MemoryLog:
        return cls()

    def start_conversation(self, channel: str = "chat") -> str:
        conversation_id = uuid.uuid4().hex
        with self._lock:
            self.states[conversation_id] = ConversationState()
            self.statuses[conversation_id] = ConversationStatus.BOT
        return conversation_id

    def state(self, conversation_id: str) -> ConversationState:
        try:
            return self.states[conversation_id]
        except KeyError as error:
            raise UnknownConversation(conversation_id) from error

    def status(self, conversation_id: str) -> ConversationStatus:
        self.state(conversation_id)
        return self.statuses[conversation_id]

    def opening(self, conversation_id: str) -> tuple[ConversationState, ConversationStatus]:
        return self.state(conversation_id), self.status(conversation_id)

    def log_turn(self, record: TurnRecord) -> int:
        with self._lock:
            return self._write(record)

    def answered(self, request: RequestKey) -> Reply | None:
        for turn_id, record in self.records:
            if record.request is None or record.request.key_hash != request.key_hash:
                continue
            request.require_request(record.request.request_digest)
            return Reply(
                record.reply_text,
                record.route,
                record.intent,
                record.confidence,
                record.conversation_id,
                turn_id,
                record.trace,
                record.latency_ms,
                record.model_version,
                self.statuses[record.conversation_id].value,
                list(record.trace.get("options", [])),
            )
        return None

    def save_contact(self, conversation_id: str, email: str) -> None:
        self.state(conversation_id)
        self.contacts[conversation_id] = email

    def log_bot_turn(
        self, record: TurnRecord, instead: Callable[[ConversationStatus], TurnRecord]
    ) -> tuple[int, ConversationStatus]:
        with self._lock:
            status = self.statuses[record.conversation_id]
            return self._write(instead(status) if status.with_people else record), status

    def _write(self, record: TurnRecord) -> int:
        if record.request is not None and any(
            r.request is not None and r.request.key_hash == record.request.key_hash
            for _, r in self.records
        ):
            raise RequestAnswered("a turn with this idempotency key is logged already")
        turn_id = len(self.records) + 1
        self.records.append((turn_id, record))
        self.states[record.conversation_id] = record.next_state
        if record.handoff_reason is not None:
            self.statuses[record.conversation_id] = ConversationStatus.WAITING
        return turn_id

    def add_feedback(
        self, turn_id: int, conversation_id: str, rating: int, comment: str | None = None
    ) -> int:
        """One rating per turn (`ratings` keeps each change); another conversation's is unknown."""
        if not 0 < turn_id <= len(self.records):
            raise UnknownTurn(turn_id)
        if self.records[turn_id - 1][1].conversation_id != conversation_id:
            raise UnknownTurn(turn_id)
        self.ratings.setdefault(turn_id, []).append(rating)
        return turn_id

    def turns(self, conversation_id: str) -> list[dict[str, Any]]:
        return [
            {"id": turn_id, "user_text": r.user_text, "reply_text": r.reply_text, "route": r.route}
            for turn_id, r in self.records
            if r.conversation_id == conversation_id
        ]

    def messages_since(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """The transcript as customer and bot lines, two per turn, newer than `after_id`."""
        self.state(conversation_id)
        lines = []
        for turn_id, r in self.records:
            if r.conversation_id == conversation_id:
                lines.append({"id": 2 * turn_id - 1, "author": "customer", "text": r.user_text})
                lines.append({"id": 2 * turn_id, "author": "bot", "text": r.reply_text})
        return [line for line in lines if line["id"] > after_id]

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class WriterLimits:
    context_answers: int = 3


class FixedWriter:
    """An answer writer that always writes one sentence. Loading it waits for `gate` (clear
    it to keep it loading) and raises `refusal` when one is set."""

    gate = threading.Event()
    refusal: Exception | None = None
    SENTENCE = "Happy to help with that."

    def __init__(self, version: str) -> None:
        self._version = version
        self.limits = WriterLimits()
        self.grounding_threshold = 0.0
        self.relevance_threshold = None

    @classmethod
    def from_settings(
        cls, settings: Settings, version: str | None = None, previous: object = None
    ) -> FixedWriter:
        if not cls.gate.wait(timeout=30):
            raise TimeoutError("the test never let the writer load")
        if cls.refusal is not None:
            raise cls.refusal
        return cls(version or "fixed-1")

    @property
    def version(self) -> str:
        return self._version

    def stream(
        self, question: str, contexts: Sequence[str], stop: threading.Event | None = None
    ) -> Iterator[str]:
        yield self.SENTENCE

    def generate(self, question: str, contexts: Sequence[str]) -> str:
        return self.SENTENCE


FixedWriter.gate.set()

# The fakes' components with `FixedWriter` writing answers (and `generator_enabled=True`).
WITH_WRITER = {
    "intent_classifier": "tests.fakes:KeywordClassifier",
    "retriever": "tests.fakes:WordOverlapRetriever",
    "conversation_log": "tests.fakes:MemoryLog",
    "answer_writer": "tests.fakes:FixedWriter",
}


def fake_settings(data_dir: Any, **overrides: Any) -> Settings:
    """Settings that serve from the fakes above: nothing is trained or loaded from disk, and
    no release is read but one beside `data_dir`."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "models_dir": Path(data_dir).parent / "models",
        "index_dir": Path(data_dir).parent / "index",
        "generator_enabled": False,
        "reload_check_seconds": 0,
        "components": {
            "intent_classifier": "tests.fakes:KeywordClassifier",
            "retriever": "tests.fakes:WordOverlapRetriever",
            "conversation_log": "tests.fakes:MemoryLog",
        },
        **overrides,
    }
    return Settings(**values)


def _words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split() if w.strip(".,?!")}

"""What the pipeline writes: conversations, turns with their transcript lines, feedback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from assistant.core.errors import RequestAnswered, UnknownTurn
from assistant.core.records import (
    Author,
    ConversationState,
    ConversationStatus,
    RequestKey,
    TurnRecord,
)
from assistant.core.types import Reply
from assistant.storage.connection import LogConnection, _now, _redacted


class SqlTurnLog(LogConnection):
    """The pipeline's side of the log (`assistant.core.seams.TurnLog`)."""

    def start_conversation(self, channel: str = "chat") -> str:
        conversation_id = uuid.uuid4().hex
        now = _now()

        def change():
            self._db.insert(
                "conversations",
                {
                    "id": conversation_id,
                    "channel": channel,
                    "created_at": now,
                    "updated_at": now,
                    "pending_intent": None,
                    "slots": "{}",
                },
            )

        self._write(change)
        return conversation_id

    def state(self, conversation_id: str) -> ConversationState:
        return self._state_of(self._conversation_row(conversation_id))

    def opening(self, conversation_id: str) -> tuple[ConversationState, ConversationStatus]:
        row = self._conversation_row(conversation_id)
        return self._state_of(row), ConversationStatus(row["status"])

    @staticmethod
    def _state_of(row: dict[str, Any]) -> ConversationState:
        return ConversationState(
            row["pending_intent"],
            json.loads(row["slots"] or "{}"),
            misunderstood=row["misunderstood"] or 0,
            last_digest=row["last_digest"],
            awaiting_contact=bool(row["awaiting_contact"]),
        )

    def save_contact(self, conversation_id: str, email: str) -> None:
        def change():
            self._require_conversation(conversation_id)
            self._update_conversation(
                conversation_id, {"contact": self._contacts.seal(email), "updated_at": _now()}
            )

        self._write(change)

    def status(self, conversation_id: str) -> ConversationStatus:
        return self.conversation(conversation_id).status

    def log_turn(self, record: TurnRecord) -> int:
        """Write one turn, its transcript lines and the conversation's new state at once.

        A turn with a `handoff_reason` puts the conversation in the agent queue. The texts,
        the reason, the sources and the trace are all redacted: each can quote the customer.
        """

        def change():
            self._require_conversation(record.conversation_id)  # held: one writer at a time
            return self._write_turn(record)

        return self._write(change)

    def log_bot_turn(
        self, record: TurnRecord, instead: Callable[[ConversationStatus], TurnRecord]
    ) -> tuple[int, ConversationStatus]:
        """Write the bot's turn unless people have the conversation by now, read in the same
        transaction as the write: then write `instead(status)`. Returns the turn id and the
        status it was written under."""

        def change():
            status = ConversationStatus(
                self._require_conversation(record.conversation_id)["status"]
            )
            return self._write_turn(instead(status) if status.with_people else record), status

        return self._write(change)

    def answered(self, request: RequestKey) -> Reply | None:
        """The reply logged for this idempotency key, as it was given (its texts as the log
        keeps them, redacted), with the conversation's status now; None if none was.
        Raises `RequestKeyReused` when the key came with another request."""
        row = self._read_one(
            "SELECT id, conversation_id, reply_text, route, intent, confidence, trace, "
            "latency_ms, model_version, request_digest FROM turns WHERE request_key = ?",
            [request.key_hash],
        )
        if row is None:
            return None
        request.require_request(row["request_digest"])
        trace = json.loads(row["trace"] or "{}")
        return Reply(
            row["reply_text"],
            row["route"],
            row["intent"],
            round(row["confidence"] or 0.0, 4),
            row["conversation_id"],
            row["id"],
            trace,
            row["latency_ms"] or 0.0,
            row["model_version"] or "",
            self.status(row["conversation_id"]).value,
            list(trace.get("options", [])),
        )

    def _write_turn(self, record: TurnRecord) -> int:
        if record.request is not None and self._db.one(
            "SELECT id FROM turns WHERE request_key = ?", [record.request.key_hash]
        ):
            raise RequestAnswered("a turn with this idempotency key is logged already")
        position = self._db.one(
            "SELECT COALESCE(MAX(position), 0) + 1 AS next FROM turns WHERE conversation_id = ?",
            [record.conversation_id],
        )["next"]
        now = _now()
        user_text, reply_text = self._redact(record.user_text), self._redact(record.reply_text)
        turn_id = self._insert(
            "turns",
            {
                "conversation_id": record.conversation_id,
                "position": position,
                "created_at": now,
                "user_text": user_text,
                "reply_text": reply_text,
                "route": record.route,
                "intent": record.intent,
                "confidence": record.confidence,
                "reason": self._redact(record.reason),
                "sources": json.dumps(_redacted(record.sources, self._redact)),
                "trace": json.dumps(_redacted(record.trace, self._redact)),
                "latency_ms": record.latency_ms,
                "model_version": record.model_version,
                "request_key": record.request.key_hash if record.request else None,
                "request_digest": record.request.request_digest if record.request else None,
            },
        )
        for author, text in ((Author.CUSTOMER, user_text), (Author.BOT, reply_text)):
            self._insert(
                "messages", self._message(record.conversation_id, turn_id, author, text, now)
            )
        self._update_conversation(
            record.conversation_id,
            {
                "updated_at": now,
                "pending_intent": record.next_state.pending_intent,
                "slots": json.dumps(record.next_state.slots),
                "misunderstood": record.next_state.misunderstood,
                "last_digest": record.next_state.last_digest,
                "awaiting_contact": int(record.next_state.awaiting_contact),
            },
        )
        if record.handoff_reason is not None:
            kind = record.handoff_kind.value if record.handoff_kind else None
            self._enter_queue(record.conversation_id, record.handoff_reason, now, kind)
        return turn_id

    def add_feedback(
        self, turn_id: int, conversation_id: str, rating: int, comment: str | None = None
    ) -> int:
        """Record thumbs up (+1) or down (-1) on a turn of `conversation_id`; returns its id.

        A turn has one rating: rating it again replaces it, and every change is kept in
        `feedback_changes`. A turn of another conversation is `UnknownTurn`, like one that
        does not exist, so turn ids cannot be probed.
        """
        if rating not in (1, -1):
            raise ValueError("rating must be 1 (thumbs up) or -1 (thumbs down)")

        def change():
            owned = self._db.one(
                "SELECT 1 AS found FROM turns WHERE id = ? AND conversation_id = ?",
                [turn_id, conversation_id],
            )
            if owned is None:
                raise UnknownTurn(turn_id)
            now = _now()
            existing = self._db.one("SELECT id, rating FROM feedback WHERE turn_id = ?", [turn_id])
            values = {
                "turn_id": turn_id,
                "conversation_id": conversation_id,
                "rating": rating,
                "comment": self._redact(comment) if comment else None,
                "created_at": now,
            }
            if existing is None:
                feedback_id, old = self._insert("feedback", values), None
            else:
                feedback_id, old = int(existing["id"]), existing["rating"]
                self._update("feedback", feedback_id, values)
            if old != rating:
                self._insert(
                    "feedback_changes",
                    {
                        "turn_id": turn_id,
                        "conversation_id": conversation_id,
                        "old_rating": old,
                        "new_rating": rating,
                        "created_at": now,
                    },
                )
            return feedback_id

        return self._write(change)

"""The SQLite conversation log: conversations, turns, feedback.

Personal data is redacted here, at the only door into storage, so no caller can
forget it. SQLite runs in WAL mode: one writer connection, serialised by a lock,
and a fresh connection per read, so readers never wait on the writer. The schema
is built by numbered migrations recorded in `PRAGMA user_version`, so a database
from an older version opens and is brought up to date.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.redaction import redact


class UnknownConversation(KeyError):
    """The conversation id is not in the log."""


class UnknownTurn(KeyError):
    """The turn id is not in the log."""


@dataclass(frozen=True)
class ConversationState:
    """What a conversation remembers between turns."""

    pending_intent: str | None = None
    slots: dict[str, str] = field(default_factory=dict)


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _create_v1(db: sqlite_utils.Database) -> None:
    db["conversations"].create(
        {
            "id": str,
            "channel": str,
            "created_at": str,
            "updated_at": str,
            "pending_intent": str,
            "slots": str,
        },
        pk="id",
    )
    db["turns"].create(
        {
            "id": int,
            "conversation_id": str,
            "position": int,
            "created_at": str,
            "user_text": str,
            "reply_text": str,
            "route": str,
            "intent": str,
            "confidence": float,
            "reason": str,
            "sources": str,
            "trace": str,
            "latency_ms": float,
            "model_version": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "position", "user_text", "reply_text", "route"},
    )
    db["turns"].create_index(["conversation_id", "position"], unique=True)
    db["feedback"].create(
        {"id": int, "turn_id": int, "rating": int, "comment": str, "created_at": str},
        pk="id",
        foreign_keys=[("turn_id", "turns", "id")],
        not_null={"turn_id", "rating"},
    )


# Append only: each entry upgrades the schema by one version.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_create_v1]


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db = sqlite_utils.Database(connection)
        self._write_lock = threading.Lock()
        self._db.enable_wal()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._write_lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this program "
                    f"knows ({len(MIGRATIONS)}); upgrade the assistant to open it"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                with self._db.atomic():
                    migration(self._db)
                    self._db.execute(f"PRAGMA user_version = {number}")

    def _reader(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(sqlite3.connect(self.path, timeout=30))

    def close(self) -> None:
        self._db.close()

    def start_conversation(self, channel: str = "chat") -> str:
        conversation_id = uuid.uuid4().hex
        now = _now()
        with self._write_lock, self._db.atomic():
            self._db["conversations"].insert(
                {
                    "id": conversation_id,
                    "channel": channel,
                    "created_at": now,
                    "updated_at": now,
                    "pending_intent": None,
                    "slots": "{}",
                }
            )
        return conversation_id

    def state(self, conversation_id: str) -> ConversationState:
        db = self._reader()
        try:
            row = db["conversations"].get(conversation_id)
        except sqlite_utils.db.NotFoundError as error:
            raise UnknownConversation(conversation_id) from error
        finally:
            db.close()
        return ConversationState(row["pending_intent"], json.loads(row["slots"] or "{}"))

    def log_turn(self, record: TurnRecord) -> int:
        """Write one turn and the conversation's new state in a single transaction."""
        with self._write_lock, self._db.atomic():
            position = self._db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE conversation_id = ?",
                [record.conversation_id],
            ).fetchone()[0]
            turn = self._db["turns"].insert(
                {
                    "conversation_id": record.conversation_id,
                    "position": position,
                    "created_at": _now(),
                    "user_text": redact(record.user_text),
                    "reply_text": redact(record.reply_text),
                    "route": record.route,
                    "intent": record.intent,
                    "confidence": record.confidence,
                    "reason": record.reason,
                    "sources": json.dumps(record.sources),
                    "trace": json.dumps(record.trace),
                    "latency_ms": record.latency_ms,
                    "model_version": record.model_version,
                }
            )
            self._db["conversations"].update(
                record.conversation_id,
                {
                    "updated_at": _now(),
                    "pending_intent": record.next_state.pending_intent,
                    "slots": json.dumps(record.next_state.slots),
                },
            )
            return int(turn.last_pk)

    def add_feedback(self, turn_id: int, rating: int, comment: str | None = None) -> int:
        """Record thumbs up (+1) or down (-1) on a turn."""
        if rating not in (1, -1):
            raise ValueError("rating must be 1 (thumbs up) or -1 (thumbs down)")
        with self._write_lock, self._db.atomic():
            if not self._db["turns"].count_where("id = ?", [turn_id]):
                raise UnknownTurn(turn_id)
            row = self._db["feedback"].insert(
                {
                    "turn_id": turn_id,
                    "rating": rating,
                    "comment": redact(comment) if comment else None,
                    "created_at": _now(),
                }
            )
            return int(row.last_pk)

    def turns(self, conversation_id: str) -> list[dict[str, Any]]:
        db = self._reader()
        try:
            return list(
                db["turns"].rows_where(
                    "conversation_id = ?", [conversation_id], order_by="position"
                )
            )
        finally:
            db.close()

    def turn(self, turn_id: int) -> dict[str, Any]:
        db = self._reader()
        try:
            return db["turns"].get(turn_id)
        except sqlite_utils.db.NotFoundError as error:
            raise UnknownTurn(turn_id) from error
        finally:
            db.close()

    def feedback(self, turn_id: int) -> list[dict[str, Any]]:
        db = self._reader()
        try:
            return list(db["feedback"].rows_where("turn_id = ?", [turn_id], order_by="id"))
        finally:
            db.close()

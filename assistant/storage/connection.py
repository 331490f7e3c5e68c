"""The SQLite connection the log's roles share: one writer, fresh readers, the schema.

SQLite runs in WAL mode with one writer: every change is a function queued to one
thread, which runs the changes waiting together in one transaction (each in its own
savepoint, so one that fails undoes only itself) and commits them as a group. The
caller returns only once its change is committed, so an acknowledged turn survives a
`kill -9`; a crowd pays for one commit per group, not per turn. Reads use a fresh
connection each, so readers never wait on the writer; the reads every message makes
(its conversation's row) use one connection per thread, kept open, and plain SQL, as
do the writes of a turn, since sqlite-utils looks the schema up on every call. Personal data is
redacted here, at the only door into storage, so no caller can forget it (the
business's own contacts, `public_contacts`, are kept).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from assistant.core.batching import MicroBatcher
from assistant.core.errors import ArtifactError, UnknownConversation, UnknownTurn
from assistant.core.records import Author, Conversation, ConversationStatus, HandoffKind
from assistant.storage.contacts import ContactVault
from assistant.storage.migrations import MIGRATIONS
from assistant.text.redaction import Redactor

# The latest intent an agent gave turn `t`, for queries over turns.
CORRECTION_SQL = (
    "SELECT json_extract(a.payload, '$.new') FROM agent_actions a "
    "WHERE a.turn_id = t.id AND a.kind = 'intent_corrected' ORDER BY a.id DESC LIMIT 1"
)


# The latest reuse review of turn `t`'s agent reply, when it approved: `.question`/`.answer`.
APPROVED_SQL = (
    "SELECT r.{column} FROM reuse_reviews r WHERE r.turn_id = t.id ORDER BY r.id DESC LIMIT 1"
)


CONVERSATION_SQL = "SELECT * FROM conversations WHERE id = ?"

T = TypeVar("T")
WRITE_GROUP = 256  # changes committed together at most


class _Reader:
    """A thread's read connection; a holder, since a connection cannot be weakly held."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection


@dataclass(frozen=True)
class _Outcome:
    value: Any = None
    error: Exception | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SQLiteConnection:
    """The database file, its writer lock and the helpers every role of the log uses."""

    def __init__(self, path: Path, redact: Redactor | None = None) -> None:
        self.path = path
        self._redact = redact or Redactor()
        self._contacts = ContactVault.beside(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db = sqlite_utils.Database(connection)
        self._db.enable_wal()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self._writes: MicroBatcher[Callable[[], Any], _Outcome] = MicroBatcher(
            self._commit_group, WRITE_GROUP, max_wait_ms=0, name="log-writer"
        )
        self._thread_readers = threading.local()
        # Weakly held: a thread that ends drops its reader, and the connection closes.
        self._open_readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()

    def _write(self, change: Callable[[], T]) -> T:
        """Run `change` on the writer connection in a transaction of its own or shared with
        others; returns its result, or raises its error, once that is committed."""
        return self._writes.run([change])[0].result()

    def _commit_group(self, changes: list[Callable[[], Any]]) -> list[_Outcome]:
        """One transaction for `changes`, each in a savepoint. A failed commit raises, and
        the batcher then runs each change alone."""
        outcomes = []
        with self._db.atomic():
            for change in changes:
                try:
                    with self._db.atomic():
                        outcomes.append(_Outcome(change()))
                except Exception as error:
                    outcomes.append(_Outcome(error=error))
        return outcomes

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        """Bring the schema up to date; runs before the writer starts, so alone."""
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise ArtifactError(
                f"{self.path} has schema version {version}, newer than this program "
                f"knows ({len(MIGRATIONS)}); upgrade the assistant to open it"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._db.atomic():
                migration(self._db)
                self._db.execute(f"PRAGMA user_version = {number}")

    def _reader(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(sqlite3.connect(self.path, timeout=30))

    def _thread_reader(self) -> sqlite3.Connection:
        """This thread's read connection, opened on its first read and kept until `close`.
        Outside a transaction each SELECT sees the latest commit, as a fresh one would."""
        reader = getattr(self._thread_readers, "reader", None)
        if reader is None:
            reader = _Reader(sqlite3.connect(self.path, timeout=30, check_same_thread=False))
            reader.connection.row_factory = sqlite3.Row
            self._thread_readers.reader = reader
            with self._readers_lock:
                self._open_readers.add(reader)
        return reader.connection

    def close(self) -> None:
        with self._readers_lock:
            for reader in list(self._open_readers):
                reader.connection.close()
            self._open_readers.clear()
        self._db.close()

    def _conversation_row(self, conversation_id: str) -> dict[str, Any]:
        row = self._thread_reader().execute(CONVERSATION_SQL, [conversation_id]).fetchone()
        if row is None:
            raise UnknownConversation(conversation_id)
        return dict(row)

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row on the writer connection; returns its rowid."""
        columns = ", ".join(f'"{column}"' for column in values)
        marks = ", ".join("?" for _ in values)
        sql = f'INSERT INTO "{table}" ({columns}) VALUES ({marks})'
        return int(self._db.execute(sql, list(values.values())).lastrowid)

    def _update_conversation(self, conversation_id: str, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f'"{column}" = ?' for column in values)
        self._db.execute(
            f"UPDATE conversations SET {assignments} WHERE id = ?",
            [*values.values(), conversation_id],
        )

    def conversation(self, conversation_id: str) -> Conversation:
        row = self._conversation_row(conversation_id)
        return Conversation(
            row["id"],
            ConversationStatus(row["status"]),
            row["handoff_reason"],
            row["handoff_at"],
            row["assigned_to"],
            row["resolved_at"],
            HandoffKind(row["handoff_kind"]) if row.get("handoff_kind") else None,
            self._contacts.open(row.get("contact")),
        )

    def _enter_queue(
        self, conversation_id: str, reason: str, now: str, kind: str | None = None
    ) -> None:
        """Waiting for an agent, unless one is already waited for or has it."""
        self._db.execute(
            "UPDATE conversations SET status = ?, handoff_reason = ?, handoff_kind = ?, "
            "handoff_at = ?, assigned_to = NULL, resolved_at = NULL, updated_at = ? "
            "WHERE id = ? AND status NOT IN (?, ?)",
            [
                ConversationStatus.WAITING.value,
                self._redact(reason),
                kind,
                now,
                now,
                conversation_id,
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
            ],
        )

    def _require_conversation(self, conversation_id: str) -> dict[str, Any]:
        cursor = self._db.execute(CONVERSATION_SQL, [conversation_id])
        row = cursor.fetchone()
        if row is None:
            raise UnknownConversation(conversation_id)
        return dict(zip((column[0] for column in cursor.description), row, strict=True))

    def _require_turn(self, turn_id: int) -> dict[str, Any]:
        try:
            return self._db["turns"].get(turn_id)
        except sqlite_utils.db.NotFoundError as error:
            raise UnknownTurn(turn_id) from error

    def _last_turn_id(self, conversation_id: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(id) FROM turns WHERE conversation_id = ?", [conversation_id]
        ).fetchone()
        return row[0]

    @staticmethod
    def _message(
        conversation_id: str,
        turn_id: int | None,
        author: Author,
        text: str,
        created_at: str,
        agent: str | None = None,
    ) -> dict[str, Any]:
        return {
            "conversation_id": conversation_id,
            "turn_id": turn_id,
            "author": author.value,
            "agent": agent,
            "text": text,
            "created_at": created_at,
        }


def _redacted(value: Any, redact: Redactor) -> Any:
    """Redact every string in a JSON-like payload: personal data never reaches storage."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value

"""The database connection the log's roles share: one writer, readers, the schema.

The log runs on an `SqlEngine`: a SQLite file by default, or PostgreSQL. Either way
every change is a function queued to one thread per server, which runs the changes
waiting together in one transaction (each in its own savepoint, so one that fails
undoes only itself) and commits them as a group. The caller returns only once its
change is committed, so an acknowledged turn survives a `kill -9`; a crowd pays for
one commit per group, not per turn. Reads go through the engine's readers (a kept
connection per thread in SQLite, a pool in PostgreSQL), so they never wait on the
writer; the log's SQL is plain and written once for both engines. Personal data is
redacted here, at the only door into storage, so no caller can forget it (the
business's own contacts, `public_contacts`, are kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from assistant.core.batching import MicroBatcher
from assistant.core.errors import ArtifactError, UnknownConversation, UnknownTurn
from assistant.core.records import Author, Conversation, ConversationStatus, HandoffKind
from assistant.storage.contacts import KEY_FILE, ContactVault
from assistant.storage.engines import SqlEngine, SqlSession, is_postgres_url, open_engine
from assistant.storage.migrations import MIGRATIONS
from assistant.text.redaction import Redactor

# The latest intent an agent gave turn `t`, for queries over turns; {new} is the engine's
# spelling of the payload's "new".
CORRECTION_SQL = (
    "SELECT {new} FROM agent_actions a "
    "WHERE a.turn_id = t.id AND a.kind = 'intent_corrected' ORDER BY a.id DESC LIMIT 1"
)


# The latest reuse review of turn `t`'s agent reply, when it approved: `.question`/`.answer`.
APPROVED_SQL = (
    "SELECT r.{column} FROM reuse_reviews r WHERE r.turn_id = t.id ORDER BY r.id DESC LIMIT 1"
)


CONVERSATION_SQL = "SELECT * FROM conversations WHERE id = ?"

T = TypeVar("T")
WRITE_GROUP = 256  # changes committed together at most


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


class LogConnection:
    """The log's database, its writer queue and the helpers every role of the log uses."""

    def __init__(
        self,
        location: str | Path,
        redact: Redactor | None = None,
        contact_key: Path | None = None,
    ) -> None:
        """`location`: a SQLite file's path, or a `postgresql://` URL. `contact_key`: the
        file of the key customers' contact addresses are sealed with (by default beside
        the SQLite file, or `var/contact.key` for PostgreSQL)."""
        self._engine: SqlEngine = open_engine(location)
        self.location = self._engine.location
        self._redact = redact or Redactor()
        if contact_key is None:
            folder = Path("var") if is_postgres_url(location) else Path(location).parent
            contact_key = folder / KEY_FILE
        self._contacts = ContactVault(contact_key)
        try:
            self._migrate()
        except BaseException:
            self._engine.close()
            raise
        self._writes: MicroBatcher[Callable[[], Any], _Outcome] = MicroBatcher(
            self._commit_group, WRITE_GROUP, max_wait_ms=0, name="log-writer"
        )

    @property
    def _db(self) -> SqlSession:
        """The writer's connection: only changes run through `_write` use it."""
        return self._engine.writer

    def _write(self, change: Callable[[], T]) -> T:
        """Run `change` on the writer connection in a transaction of its own or shared with
        others; returns its result, or raises its error, once that is committed."""
        return self._writes.run([change])[0].result()

    def _commit_group(self, changes: list[Callable[[], Any]]) -> list[_Outcome]:
        """One transaction for `changes`, each in a savepoint. A failed commit raises, and
        the batcher then runs each change alone."""
        outcomes = []
        writer = self._db
        with writer.transaction():
            for change in changes:
                try:
                    with writer.transaction():
                        outcomes.append(_Outcome(change()))
                except Exception as error:
                    outcomes.append(_Outcome(error=error))
        return outcomes

    @property
    def schema_version(self) -> int:
        return self._engine.schema_version()

    def _migrate(self) -> None:
        """Bring the schema up to date, one step per transaction; runs before the writer
        starts, and the engine keeps other servers out while a step runs."""
        while True:
            with self._engine.migrating() as schema:
                version = self._engine.schema_version()
                if version > len(MIGRATIONS):
                    raise ArtifactError(
                        f"{self.location} has schema version {version}, newer than this "
                        f"program knows ({len(MIGRATIONS)}); upgrade the assistant to open it"
                    )
                if version == len(MIGRATIONS):
                    return
                MIGRATIONS[version](schema)
                self._engine.set_schema_version(version + 1)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._engine.reading() as reader:
            return reader.all(sql, params)

    def _read_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        with self._engine.reading() as reader:
            return reader.one(sql, params)

    def close(self) -> None:
        self._engine.close()

    def _conversation_row(self, conversation_id: str) -> dict[str, Any]:
        row = self._read_one(CONVERSATION_SQL, [conversation_id])
        if row is None:
            raise UnknownConversation(conversation_id)
        return row

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row on the writer connection; returns its integer id."""
        return int(self._db.insert(table, dict(values)))

    def _update(self, table: str, row_id: Any, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f'"{column}" = ?' for column in values)
        self._db.execute(
            f'UPDATE "{table}" SET {assignments} WHERE id = ?', [*values.values(), row_id]
        )

    def _update_conversation(self, conversation_id: str, values: Mapping[str, Any]) -> None:
        self._update("conversations", conversation_id, values)

    def _exists(self, table: str, row_id: Any) -> bool:
        return (
            self._read_one(f'SELECT 1 AS found FROM "{table}" WHERE id = ?', [row_id]) is not None
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
        """The conversation's row, read by the writer and held until its transaction ends
        (in PostgreSQL, where another server may be changing it)."""
        row = self._db.one(CONVERSATION_SQL + self._engine.lock_row, [conversation_id])
        if row is None:
            raise UnknownConversation(conversation_id)
        return row

    def _require_turn(self, turn_id: int) -> dict[str, Any]:
        row = self._db.one("SELECT * FROM turns WHERE id = ?", [turn_id])
        if row is None:
            raise UnknownTurn(turn_id)
        return row

    def _last_turn_id(self, conversation_id: str) -> int | None:
        row = self._db.one(
            "SELECT MAX(id) AS id FROM turns WHERE conversation_id = ?", [conversation_id]
        )
        return row["id"] if row else None

    def _correction_sql(self) -> str:
        return CORRECTION_SQL.format(new=self._engine.json_text("a.payload", "new"))

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

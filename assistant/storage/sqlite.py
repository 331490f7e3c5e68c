"""The SQLite conversation log: conversations, turns, feedback, and the support team's work.

Personal data is redacted here, at the only door into storage, so no caller can
forget it (the business's own contacts, `public_contacts`, are kept). SQLite runs
in WAL mode: one writer connection, serialised by a lock, and a fresh connection
per read, so readers never wait on the writer. The schema is built by numbered
migrations recorded in `PRAGMA user_version`, so a database from an older
version opens and is brought up to date.

Two views of a conversation are kept. `turns` holds one row per customer message
with everything the bot decided (route, intent, trace); `messages` is the
transcript people read, customer, bot and agent lines in one sequence whose ids
only grow, so a chat page can ask for what is new since the last id it showed.
Every agent action is a row in `agent_actions`, linked to the turn it concerns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.text.redaction import Redactor


class UnknownConversation(KeyError):
    """The conversation id is not in the log."""


class UnknownTurn(KeyError):
    """The turn id is not in the log."""


class HeldByAnotherAgent(RuntimeError):
    """The conversation is with another agent: taking it over is a deliberate step (`take`)."""

    def __init__(self, conversation_id: str, holder: str) -> None:
        super().__init__(f"conversation {conversation_id} is with {holder}")
        self.holder = holder


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


class QueueKind(StrEnum):
    HANDOFF = "handoff"
    THUMBS_DOWN = "thumbs_down"
    LOW_CONFIDENCE = "low_confidence"


# The route logged for customer messages the bot leaves to the support team.
AGENT_ROUTE = "agent"
# `router.Route.HANDOFF`, named here so the log does not depend on the routing code.
HANDOFF_ROUTE = "handoff"


@dataclass(frozen=True)
class Conversation:
    id: str
    status: ConversationStatus
    handoff_reason: str | None
    handoff_at: str | None
    assigned_to: str | None
    resolved_at: str | None


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


def _create_v2(db: sqlite_utils.Database) -> None:
    """Handoff status, the transcript with agent replies, and the agents' actions."""
    conversations = db["conversations"]
    conversations.add_column("status", str, not_null_default=ConversationStatus.BOT.value)
    for column in ("handoff_reason", "handoff_at", "assigned_to", "resolved_at"):
        conversations.add_column(column, str)
    db["messages"].create(
        {
            "id": int,
            "conversation_id": str,
            "turn_id": int,
            "author": str,
            "agent": str,
            "text": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id"), ("turn_id", "turns", "id")],
        not_null={"conversation_id", "author", "text", "created_at"},
    )
    db["messages"].create_index(["conversation_id", "id"])
    db["messages"].create_index(["turn_id"])
    # The transcript of the turns logged before this version: each turn, both sides in order.
    db.execute(
        "INSERT INTO messages (conversation_id, turn_id, author, text, created_at) "
        "SELECT conversation_id, turn_id, author, text, created_at FROM ("
        "  SELECT conversation_id, id AS turn_id, ? AS author, user_text AS text, created_at,"
        "         0 AS side FROM turns"
        "  UNION ALL"
        "  SELECT conversation_id, id, ?, reply_text, created_at, 1 FROM turns"
        ") ORDER BY turn_id, side",
        [Author.CUSTOMER.value, Author.BOT.value],
    )
    db["agent_actions"].create(
        {
            "id": int,
            "conversation_id": str,
            "turn_id": int,
            "kind": str,
            "actor": str,
            "created_at": str,
            "payload": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id"), ("turn_id", "turns", "id")],
        not_null={"conversation_id", "kind", "actor", "created_at", "payload"},
    )
    db["agent_actions"].create_index(["conversation_id", "created_at"])
    db["agent_actions"].create_index(["turn_id"])
    db["feedback"].create_index(["turn_id"])
    db["conversations"].create_index(["status"])


# Append only: each entry upgrades the schema by one version.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_create_v1, _create_v2]


class ConversationStore:
    def __init__(self, path: Path, redact: Redactor | None = None) -> None:
        self.path = path
        self._redact = redact or Redactor()
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

    def _conversation_row(self, conversation_id: str) -> dict[str, Any]:
        db = self._reader()
        try:
            return db["conversations"].get(conversation_id)
        except sqlite_utils.db.NotFoundError as error:
            raise UnknownConversation(conversation_id) from error
        finally:
            db.close()

    def state(self, conversation_id: str) -> ConversationState:
        row = self._conversation_row(conversation_id)
        return ConversationState(row["pending_intent"], json.loads(row["slots"] or "{}"))

    def log_turn(self, record: TurnRecord) -> int:
        """Write one turn, its transcript lines and the conversation's new state at once.

        A turn with a `handoff_reason` puts the conversation in the agent queue.
        """
        with self._write_lock, self._db.atomic():
            position = self._db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE conversation_id = ?",
                [record.conversation_id],
            ).fetchone()[0]
            now = _now()
            user_text, reply_text = self._redact(record.user_text), self._redact(record.reply_text)
            turn = self._db["turns"].insert(
                {
                    "conversation_id": record.conversation_id,
                    "position": position,
                    "created_at": now,
                    "user_text": user_text,
                    "reply_text": reply_text,
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
            turn_id = int(turn.last_pk)
            self._db["messages"].insert_all(
                [
                    self._message(record.conversation_id, turn_id, Author.CUSTOMER, user_text, now),
                    self._message(record.conversation_id, turn_id, Author.BOT, reply_text, now),
                ]
            )
            self._db["conversations"].update(
                record.conversation_id,
                {
                    "updated_at": now,
                    "pending_intent": record.next_state.pending_intent,
                    "slots": json.dumps(record.next_state.slots),
                },
            )
            if record.handoff_reason is not None:
                self._enter_queue(record.conversation_id, record.handoff_reason, now)
            return turn_id

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
                    "comment": self._redact(comment) if comment else None,
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

    # The support team: status, queue, transcript, agents' actions.

    def conversation(self, conversation_id: str) -> Conversation:
        row = self._conversation_row(conversation_id)
        return Conversation(
            row["id"],
            ConversationStatus(row["status"]),
            row["handoff_reason"],
            row["handoff_at"],
            row["assigned_to"],
            row["resolved_at"],
        )

    def status(self, conversation_id: str) -> ConversationStatus:
        return self.conversation(conversation_id).status

    def handoff(self, conversation_id: str, reason: str) -> None:
        """Put a conversation in the agent queue; the bot stops answering it."""
        with self._write_lock, self._db.atomic():
            self._require_conversation(conversation_id)
            self._enter_queue(conversation_id, reason, _now())

    def _enter_queue(self, conversation_id: str, reason: str, now: str) -> None:
        """Waiting for an agent, unless one is already waited for or has it."""
        self._db.execute(
            "UPDATE conversations SET status = ?, handoff_reason = ?, handoff_at = ?, "
            "assigned_to = NULL, resolved_at = NULL, updated_at = ? "
            "WHERE id = ? AND status NOT IN (?, ?)",
            [
                ConversationStatus.WAITING.value,
                self._redact(reason),
                now,
                now,
                conversation_id,
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
            ],
        )

    def _require_conversation(self, conversation_id: str) -> dict[str, Any]:
        try:
            return self._db["conversations"].get(conversation_id)
        except sqlite_utils.db.NotFoundError as error:
            raise UnknownConversation(conversation_id) from error

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

    def _act(
        self,
        conversation_id: str,
        turn_id: int | None,
        kind: ActionKind,
        actor: str,
        payload: dict[str, Any],
        now: str,
    ) -> int:
        if not actor.strip():
            raise ValueError("an agent action needs the agent's name")
        row = self._db["agent_actions"].insert(
            {
                "conversation_id": conversation_id,
                "turn_id": turn_id,
                "kind": kind.value,
                "actor": actor,
                "created_at": now,
                "payload": json.dumps(_redacted(payload, self._redact), ensure_ascii=False),
            }
        )
        return int(row.last_pk)

    def _assign(self, conversation_id: str, agent: str, now: str, *, take_over: bool) -> bool:
        """Give the conversation to `agent` unless it is already theirs; True if it changed.
        Without `take_over`, one another agent has is refused with `HeldByAnotherAgent`."""
        row = self._require_conversation(conversation_id)
        if row["status"] == ConversationStatus.WITH_AGENT:
            holder = row["assigned_to"]
            if holder == agent:
                return False
            if holder and not take_over:
                raise HeldByAnotherAgent(conversation_id, holder)
        self._db["conversations"].update(
            conversation_id,
            {
                "status": ConversationStatus.WITH_AGENT.value,
                "assigned_to": agent,
                "resolved_at": None,
                "updated_at": now,
            },
        )
        previous = {"status": row["status"], "assigned_to": row["assigned_to"]}
        self._act(
            conversation_id,
            self._last_turn_id(conversation_id),
            ActionKind.TAKEN,
            agent,
            previous,
            now,
        )
        return True

    def take(self, conversation_id: str, agent: str) -> None:
        """An agent takes a conversation, from another agent too: it is theirs until resolved."""
        with self._write_lock, self._db.atomic():
            self._assign(conversation_id, agent, _now(), take_over=True)

    def agent_reply(
        self,
        conversation_id: str,
        agent: str,
        text: str,
        suggestion: str | None = None,
        turn_id: int | None = None,
        suggestion_info: dict[str, Any] | None = None,
    ) -> int:
        """Send an agent's reply to the customer; returns the transcript message id.

        `suggestion` is the suggested reply the agent started from, if any: the
        action is then recorded as that suggestion used as it was, or edited, with
        both texts and `suggestion_info` (its rank, route, intent, score). The reply
        concerns `turn_id`, by default the latest customer turn. An agent who replies
        takes the conversation, unless another agent has it (`HeldByAnotherAgent`).
        """
        if not text.strip():
            raise ValueError("the reply is empty")
        with self._write_lock, self._db.atomic():
            now = _now()
            self._assign(conversation_id, agent, now, take_over=False)
            if turn_id is None:
                turn_id = self._last_turn_id(conversation_id)
            elif self._require_turn(turn_id)["conversation_id"] != conversation_id:
                raise UnknownTurn(turn_id)
            clean = self._redact(text.strip())
            message = self._db["messages"].insert(
                self._message(conversation_id, turn_id, Author.AGENT, clean, now, agent)
            )
            message_id = int(message.last_pk)
            kind, payload = _reply_action(clean, suggestion, self._redact)
            if suggestion_info:
                payload["suggestion"] = suggestion_info
            payload["message_id"] = message_id
            self._act(conversation_id, turn_id, kind, agent, payload, now)
            return message_id

    def correct_intent(self, turn_id: int, agent: str, intent: str) -> int:
        """Record the right intent of a customer turn; the latest correction counts."""
        intent = intent.strip()
        if not intent:
            raise ValueError("the corrected intent is empty")
        with self._write_lock, self._db.atomic():
            turn = self._require_turn(turn_id)
            previous = self._db.execute(
                "SELECT json_extract(payload, '$.new') FROM agent_actions "
                "WHERE turn_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                [turn_id, ActionKind.INTENT_CORRECTED.value],
            ).fetchone()
            old = previous[0] if previous else turn["intent"]
            return self._act(
                turn["conversation_id"],
                turn_id,
                ActionKind.INTENT_CORRECTED,
                agent,
                {"old": old, "new": intent, "model": turn["intent"]},
                _now(),
            )

    def resolve(self, conversation_id: str, agent: str) -> None:
        """Close the conversation for the support team; the bot answers it again."""
        with self._write_lock, self._db.atomic():
            row = self._require_conversation(conversation_id)
            now = _now()
            self._db["conversations"].update(
                conversation_id,
                {
                    "status": ConversationStatus.RESOLVED.value,
                    "resolved_at": now,
                    "updated_at": now,
                    "pending_intent": None,
                },
            )
            self._act(
                conversation_id,
                self._last_turn_id(conversation_id),
                ActionKind.RESOLVED,
                agent,
                {"previous_status": row["status"]},
                now,
            )

    def messages_since(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """Transcript lines newer than `after_id`, oldest first: what a chat page polls for."""
        db = self._reader()
        try:
            if not db["conversations"].count_where("id = ?", [conversation_id]):
                raise UnknownConversation(conversation_id)
            return list(
                db.query(
                    "SELECT id, turn_id, author, agent, text, created_at FROM messages "
                    "WHERE conversation_id = ? AND id > ? ORDER BY id",
                    [conversation_id, after_id],
                )
            )
        finally:
            db.close()

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        """The whole transcript for an agent: each line with its turn's route and intents.

        `intent` is the model's, `final_intent` the agent's correction if there is one.
        """
        db = self._reader()
        try:
            if not db["conversations"].count_where("id = ?", [conversation_id]):
                raise UnknownConversation(conversation_id)
            return list(
                db.query(
                    f"SELECT m.id, m.turn_id, m.author, m.agent, m.text, m.created_at, "
                    f"t.route, t.intent, t.confidence, "
                    f"COALESCE(({_CORRECTION_SQL}), t.intent) AS final_intent "
                    f"FROM messages m LEFT JOIN turns t ON t.id = m.turn_id "
                    f"WHERE m.conversation_id = ? ORDER BY m.id",
                    [conversation_id],
                )
            )
        finally:
            db.close()

    def actions(self, conversation_id: str) -> list[dict[str, Any]]:
        """The agents' actions on a conversation, oldest first, payloads decoded."""
        db = self._reader()
        try:
            rows = db["agent_actions"].rows_where(
                "conversation_id = ?", [conversation_id], order_by="id"
            )
            return [{**row, "payload": json.loads(row["payload"])} for row in rows]
        finally:
            db.close()

    def queue(self, low_confidence_below: float = 0.5, limit: int = 100) -> list[QueueItem]:
        """What the support team should look at, each item saying why.

        Handed-off conversations still waiting or with an agent come first, oldest
        first; then thumbs-down turns and turns the bot answered with an intent
        probability under `low_confidence_below`, newest first. A turn leaves the
        queue once an agent has acted on its conversation since it was logged.
        """
        db = self._reader()
        try:
            return self._handed_off(db, limit) + self._to_review(db, low_confidence_below, limit)
        finally:
            db.close()

    @staticmethod
    def _handed_off(db: sqlite_utils.Database, limit: int) -> list[QueueItem]:
        rows = db.query(
            "SELECT c.id, c.status, c.handoff_reason, c.handoff_at, c.assigned_to, "
            "  (SELECT MAX(id) FROM turns WHERE conversation_id = c.id) AS turn_id, "
            "  (SELECT text FROM messages WHERE conversation_id = c.id AND author = ? "
            "   ORDER BY id DESC LIMIT 1) AS user_text "
            "FROM conversations c WHERE c.status IN (?, ?) ORDER BY c.handoff_at LIMIT ?",
            [
                Author.CUSTOMER.value,
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
                limit,
            ],
        )
        return [
            QueueItem(
                QueueKind.HANDOFF,
                f"handed off: {row['handoff_reason']}",
                row["id"],
                row["turn_id"],
                ConversationStatus(row["status"]),
                row["assigned_to"],
                row["user_text"],
                row["handoff_at"],
            )
            for row in rows
        ]

    @staticmethod
    def _to_review(db: sqlite_utils.Database, below: float, limit: int) -> list[QueueItem]:
        rows = db.query(
            "SELECT t.id, t.conversation_id, t.user_text, t.created_at, t.confidence, "
            "  t.route, t.intent, c.status, c.assigned_to, "
            "  (SELECT rating FROM feedback f WHERE f.turn_id = t.id "
            "   ORDER BY f.id DESC LIMIT 1) AS rating "
            "FROM turns t JOIN conversations c ON c.id = t.conversation_id "
            "WHERE c.status NOT IN (?, ?) AND t.route NOT IN (?, ?) "
            "  AND NOT EXISTS (SELECT 1 FROM agent_actions a "
            "    WHERE a.conversation_id = t.conversation_id AND a.created_at >= t.created_at) "
            "  AND (t.confidence < ? OR rating = -1) "
            "ORDER BY t.id DESC LIMIT ?",
            [
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
                HANDOFF_ROUTE,
                AGENT_ROUTE,
                below,
                limit,
            ],
        )
        items = []
        for row in rows:
            if row["rating"] == -1:
                kind, why = QueueKind.THUMBS_DOWN, "the customer gave this reply a thumbs down"
            else:
                kind = QueueKind.LOW_CONFIDENCE
                why = f"answered with low confidence ({row['intent']} p={row['confidence']:.2f})"
            items.append(
                QueueItem(
                    kind,
                    why,
                    row["conversation_id"],
                    row["id"],
                    ConversationStatus(row["status"]),
                    row["assigned_to"],
                    row["user_text"],
                    row["created_at"],
                )
            )
        return sorted(items, key=lambda item: item.kind != QueueKind.THUMBS_DOWN)

    # Reads for export and metrics.

    def turn_facts(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every turn since an ISO date or time, oldest first, with what people added to it.

        Besides the turn's own columns: `corrected_intent` (the latest agent
        correction), `agent_reply` (the first agent reply to it) and `rating` (the
        latest feedback, 1 or -1).
        """
        db = self._reader()
        try:
            return list(
                db.query(
                    f"SELECT t.id, t.conversation_id, t.created_at, t.user_text, t.reply_text, "
                    f"t.route, t.intent, t.confidence, t.latency_ms, "
                    f"({_CORRECTION_SQL}) AS corrected_intent, "
                    f"(SELECT m.text FROM messages m WHERE m.turn_id = t.id AND m.author = ? "
                    f" ORDER BY m.id LIMIT 1) AS agent_reply, "
                    f"(SELECT f.rating FROM feedback f WHERE f.turn_id = t.id "
                    f" ORDER BY f.id DESC LIMIT 1) AS rating "
                    f"FROM turns t WHERE t.created_at >= ? ORDER BY t.id",
                    [Author.AGENT.value, since or ""],
                )
            )
        finally:
            db.close()

    def conversation_facts(self, since: str | None = None) -> list[dict[str, Any]]:
        """Each conversation started since an ISO date or time, and whether a person took part.

        `human` is 1 when it was ever handed off, taken or answered by an agent; an
        agent only correcting intents afterwards does not count.
        """
        db = self._reader()
        try:
            return list(
                db.query(
                    "SELECT c.id, c.created_at, c.status, c.handoff_at, "
                    "  (c.handoff_at IS NOT NULL "
                    "   OR EXISTS (SELECT 1 FROM messages m "
                    "              WHERE m.conversation_id = c.id AND m.author = ?) "
                    "   OR EXISTS (SELECT 1 FROM agent_actions a "
                    "              WHERE a.conversation_id = c.id AND a.kind = ?)) AS human, "
                    "  (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turns "
                    "FROM conversations c WHERE c.created_at >= ? ORDER BY c.created_at",
                    [Author.AGENT.value, ActionKind.TAKEN.value, since or ""],
                )
            )
        finally:
            db.close()


# The latest intent an agent gave turn `t`, if any.
_CORRECTION_SQL = (
    "SELECT json_extract(a.payload, '$.new') FROM agent_actions a "
    "WHERE a.turn_id = t.id AND a.kind = 'intent_corrected' ORDER BY a.id DESC LIMIT 1"
)


def _reply_action(
    text: str, suggestion: str | None, redact: Redactor
) -> tuple[ActionKind, dict[str, Any]]:
    if suggestion is None:
        return ActionKind.REPLY_SENT, {"text": text}
    original = redact(suggestion.strip())
    if original == text:
        return ActionKind.SUGGESTION_USED, {"text": text}
    return ActionKind.SUGGESTION_EDITED, {"original": original, "edited": text}


def _redacted(value: Any, redact: Redactor) -> Any:
    """Redact every string in a JSON-like payload: personal data never reaches storage."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value

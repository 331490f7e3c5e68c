"""The log's schema as numbered migrations, the same for every engine.

Each step is written against `SchemaEditor`, which spells it for SQLite (through
sqlite-utils, as logs have always been made) or PostgreSQL; the version reached is
recorded by the engine (`PRAGMA user_version` in SQLite). A database written by an
older version opens and is brought up to date; one written by a newer version is
refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.core.records import Author, ConversationStatus
from assistant.storage.engines import SchemaEditor


def _create_v1(db: SchemaEditor) -> None:
    db.create_table(
        "conversations",
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
    db.create_table(
        "turns",
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
    db.create_index("turns", ["conversation_id", "position"], unique=True)
    db.create_table(
        "feedback",
        {"id": int, "turn_id": int, "rating": int, "comment": str, "created_at": str},
        pk="id",
        foreign_keys=[("turn_id", "turns", "id")],
        not_null={"turn_id", "rating"},
    )


def _create_v2(db: SchemaEditor) -> None:
    """Handoff status, the transcript with agent replies, and the agents' actions."""
    db.add_column("conversations", "status", str, not_null_default=ConversationStatus.BOT.value)
    for column in ("handoff_reason", "handoff_at", "assigned_to", "resolved_at"):
        db.add_column("conversations", column, str)
    db.create_table(
        "messages",
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
    db.create_index("messages", ["conversation_id", "id"])
    db.create_index("messages", ["turn_id"])
    # The transcript of the turns logged before this version: each turn, both sides in order.
    db.execute(
        "INSERT INTO messages (conversation_id, turn_id, author, text, created_at) "
        "SELECT conversation_id, turn_id, author, text, created_at FROM ("
        "  SELECT conversation_id, id AS turn_id, CAST(? AS TEXT) AS author, user_text AS text,"
        "         created_at,"
        "         0 AS side FROM turns"
        "  UNION ALL"
        "  SELECT conversation_id, id, CAST(? AS TEXT), reply_text, created_at, 1 FROM turns"
        ") lines ORDER BY turn_id, side",
        [Author.CUSTOMER.value, Author.BOT.value],
    )
    db.create_table(
        "agent_actions",
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
    db.create_index("agent_actions", ["conversation_id", "created_at"])
    db.create_index("agent_actions", ["turn_id"])
    db.create_index("feedback", ["turn_id"])
    db.create_index("conversations", ["status"])


def _create_v3(db: SchemaEditor) -> None:
    """One rating per turn with its history, and the answers people approved for reuse."""
    db.create_table(
        "feedback_changes",
        {
            "id": int,
            "turn_id": int,
            "conversation_id": str,
            "old_rating": int,
            "new_rating": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("turn_id", "turns", "id"), ("conversation_id", "conversations", "id")],
        not_null={"turn_id", "conversation_id", "new_rating", "created_at"},
    )
    db.create_index("feedback_changes", ["turn_id"])
    # Every rating logged so far is history; the latest per turn is the one that stands.
    db.execute(
        "INSERT INTO feedback_changes (turn_id, conversation_id, old_rating, new_rating, "
        "  created_at) "
        "SELECT f.turn_id, t.conversation_id, "
        "  (SELECT p.rating FROM feedback p WHERE p.turn_id = f.turn_id AND p.id < f.id "
        "   ORDER BY p.id DESC LIMIT 1), f.rating, COALESCE(f.created_at, '') "
        "FROM feedback f JOIN turns t ON t.id = f.turn_id ORDER BY f.id"
    )
    db.execute(
        "DELETE FROM feedback WHERE id NOT IN (SELECT MAX(id) FROM feedback GROUP BY turn_id)"
    )
    db.add_column("feedback", "conversation_id", str)
    db.execute(
        "UPDATE feedback SET conversation_id = "
        "(SELECT conversation_id FROM turns WHERE turns.id = feedback.turn_id)"
    )
    db.create_index("feedback", ["turn_id"], unique=True, name="feedback_one_per_turn")
    db.create_table(
        "reuse_reviews",
        {
            "id": int,
            "message_id": int,
            "turn_id": int,
            "conversation_id": str,
            "approved": int,
            "actor": str,
            "created_at": str,
            "question": str,
            "answer": str,
        },
        pk="id",
        foreign_keys=[
            ("message_id", "messages", "id"),
            ("turn_id", "turns", "id"),
            ("conversation_id", "conversations", "id"),
        ],
        not_null={"message_id", "conversation_id", "approved", "actor", "created_at"},
    )
    db.create_index("reuse_reviews", ["message_id"])
    db.create_index("reuse_reviews", ["turn_id"])


def _create_v4(db: SchemaEditor) -> None:
    """Not knowing: misunderstandings running, why a conversation was handed off (its
    place in the queue), and an email address left to be contacted on (encrypted)."""
    db.add_column("conversations", "misunderstood", int, not_null_default=0)
    db.add_column("conversations", "last_digest", str)
    db.add_column("conversations", "awaiting_contact", int, not_null_default=0)
    db.add_column("conversations", "handoff_kind", str)
    db.add_column("conversations", "contact", str)


def _create_v5(db: SchemaEditor) -> None:
    """Staff sign-ins kept in the log, so that every server sees them: sessions (a token's
    hash, never the token) and recent failed attempts for the sign-in throttle. Times are
    Unix seconds: servers compare them with their own clocks."""
    db.create_table(
        "staff_sessions",
        {"token_hash": str, "name": str, "page": str, "issued_at": float},
        pk="token_hash",
        not_null={"name", "page", "issued_at"},
    )
    db.create_index("staff_sessions", ["page", "issued_at"])
    db.create_index("staff_sessions", ["name"])
    db.create_table(
        "sign_in_failures",
        {"id": int, "name": str, "failed_at": float},
        pk="id",
        not_null={"name", "failed_at"},
    )
    db.create_index("sign_in_failures", ["name", "failed_at"])


def _create_v6(db: SchemaEditor) -> None:
    """Idempotent retries: the hash of a client's idempotency key on the turn it got (one
    turn a key; turns without one are NULL, which a unique index lets repeat), and a digest
    of the request, to answer a retry with that turn."""
    db.add_column("turns", "request_key", str)
    db.add_column("turns", "request_digest", str)
    db.create_index("turns", ["request_key"], unique=True)


# Append only: each entry upgrades the schema by one version.
MIGRATIONS: list[Callable[[SchemaEditor], None]] = [
    _create_v1,
    _create_v2,
    _create_v3,
    _create_v4,
    _create_v5,
    _create_v6,
]

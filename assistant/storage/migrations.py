"""The log's schema as numbered migrations, recorded in `PRAGMA user_version`.

A database written by an older version opens and is brought up to date; one
written by a newer version is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from assistant.core.records import Author, ConversationStatus


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


def _create_v3(db: sqlite_utils.Database) -> None:
    """One rating per turn with its history, and the answers people approved for reuse."""
    db["feedback_changes"].create(
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
    db["feedback_changes"].create_index(["turn_id"])
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
    db["feedback"].add_column("conversation_id", str)
    db.execute(
        "UPDATE feedback SET conversation_id = "
        "(SELECT conversation_id FROM turns WHERE turns.id = feedback.turn_id)"
    )
    db["feedback"].create_index(["turn_id"], unique=True, index_name="feedback_one_per_turn")
    db["reuse_reviews"].create(
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
    db["reuse_reviews"].create_index(["message_id"])
    db["reuse_reviews"].create_index(["turn_id"])


def _create_v4(db: sqlite_utils.Database) -> None:
    """Not knowing: misunderstandings running, why a conversation was handed off (its
    place in the queue), and an email address left to be contacted on (encrypted)."""
    conversations = db["conversations"]
    conversations.add_column("misunderstood", int, not_null_default=0)
    conversations.add_column("last_digest", str)
    conversations.add_column("awaiting_contact", int, not_null_default=0)
    conversations.add_column("handoff_kind", str)
    conversations.add_column("contact", str)


# Append only: each entry upgrades the schema by one version.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _create_v1,
    _create_v2,
    _create_v3,
    _create_v4,
]

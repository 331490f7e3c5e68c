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


# Append only: each entry upgrades the schema by one version.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_create_v1, _create_v2]

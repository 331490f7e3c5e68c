"""What analytics, export and reviews read: turns, feedback, and facts per turn and conversation."""

from __future__ import annotations

from typing import Any

from assistant.core.errors import UnknownTurn
from assistant.core.records import ActionKind, Author
from assistant.storage.connection import APPROVED_SQL, LogConnection


class SqlLogReader(LogConnection):
    """The readers' side of the log (`assistant.core.seams.LogReader`)."""

    def turns(self, conversation_id: str) -> list[dict[str, Any]]:
        return self._read(
            "SELECT * FROM turns WHERE conversation_id = ? ORDER BY position", [conversation_id]
        )

    def turn(self, turn_id: int) -> dict[str, Any]:
        row = self._read_one("SELECT * FROM turns WHERE id = ?", [turn_id])
        if row is None:
            raise UnknownTurn(turn_id)
        return row

    def feedback(self, turn_id: int) -> list[dict[str, Any]]:
        return self._read("SELECT * FROM feedback WHERE turn_id = ? ORDER BY id", [turn_id])

    def feedback_history(self, turn_id: int) -> list[dict[str, Any]]:
        """Every change to a turn's rating, oldest first (`old_rating` None: the first)."""
        return self._read("SELECT * FROM feedback_changes WHERE turn_id = ? ORDER BY id", [turn_id])

    def turn_facts(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every turn since an ISO date or time, oldest first, with what people added to it.

        Besides the turn's own columns: `corrected_intent` (the latest agent
        correction), `agent_reply` (the first agent reply to it), `approved_question` and
        `approved_answer` (the Q&A pair a person approved for reuse from it, if the latest
        review of its agent reply approved), `rating` (its feedback, 1 or -1) and
        `handoff_kind` (a handoff turn's `HandoffKind`, from its trace; None before v4).
        """
        handoff_kind = self._engine.json_text_if_valid("t.trace", "handoff")
        return self._read(
            f"SELECT t.id, t.conversation_id, t.created_at, t.user_text, t.reply_text, "
            f"t.route, t.intent, t.confidence, t.latency_ms, "
            f"({self._correction_sql()}) AS corrected_intent, "
            f"(SELECT m.text FROM messages m WHERE m.turn_id = t.id AND m.author = ? "
            f" ORDER BY m.id LIMIT 1) AS agent_reply, "
            f"({APPROVED_SQL.format(column='question')}) AS approved_question, "
            f"({APPROVED_SQL.format(column='answer')}) AS approved_answer, "
            f"(SELECT f.rating FROM feedback f WHERE f.turn_id = t.id "
            f" ORDER BY f.id DESC LIMIT 1) AS rating, "
            f"{handoff_kind} AS handoff_kind "
            f"FROM turns t WHERE t.created_at >= ? ORDER BY t.id",
            [Author.AGENT.value, since or ""],
        )

    def conversation_facts(self, since: str | None = None) -> list[dict[str, Any]]:
        """Each conversation started since an ISO date or time, and whether a person took part.

        `human` is 1 when it was ever handed off, taken or answered by an agent; an
        agent only correcting intents afterwards does not count. `handoff_kind` is the
        latest handoff's `HandoffKind` (None before v4, or for one an agent made), and
        `last_route` the route of its latest turn.
        """
        return self._read(
            "SELECT c.id, c.created_at, c.status, c.handoff_at, c.handoff_kind, "
            "  CASE WHEN (c.handoff_at IS NOT NULL "
            "   OR EXISTS (SELECT 1 FROM messages m "
            "              WHERE m.conversation_id = c.id AND m.author = ?) "
            "   OR EXISTS (SELECT 1 FROM agent_actions a "
            "              WHERE a.conversation_id = c.id AND a.kind = ?)) THEN 1 ELSE 0 END "
            "  AS human, "
            "  (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turns, "
            "  (SELECT t.route FROM turns t WHERE t.conversation_id = c.id "
            "   ORDER BY t.position DESC LIMIT 1) AS last_route "
            "FROM conversations c WHERE c.created_at >= ? ORDER BY c.created_at",
            [Author.AGENT.value, ActionKind.TAKEN.value, since or ""],
        )

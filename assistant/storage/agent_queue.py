"""The agent queue: what the support team should look at, most urgent first, each saying why."""

from __future__ import annotations

from typing import Any

from assistant.core.conversation import repeat_form
from assistant.core.records import Author, ConversationStatus, HandoffKind, QueueItem, QueueKind
from assistant.core.types import Route
from assistant.storage.connection import LogConnection


class SqlAgentQueue(LogConnection):
    """The queue part of `assistant.core.seams.AgentDesk`."""

    def queue(self, low_confidence_below: float = 0.5, limit: int = 100) -> list[QueueItem]:
        """What the support team should look at, each item saying why.

        Handed-off conversations still waiting or with an agent come first, the most
        urgent first (`HandoffKind`: the customer asked for a person, then an intent
        always left to people, then the rest: not understood, or handed off before the
        kind was recorded), each group oldest first. Then the turns to review, newest
        first: thumbs-down turns, then answers given with an intent probability under
        `low_confidence_below`. A refusal or a clarifying question is not a low-confidence
        answer (the first has no in-domain signal, the second already asked the
        customer), but a thumbs down on any turn counts. A turn leaves the queue once an
        agent has acted on its conversation since it was logged.
        """
        return self._handed_off(limit) + self._to_review(low_confidence_below, limit)

    def _handed_off(self, limit: int) -> list[QueueItem]:
        rows = self._read(
            "SELECT c.id, c.status, c.handoff_reason, c.handoff_kind, c.handoff_at, "
            "  c.assigned_to, "
            "  (SELECT MAX(id) FROM turns WHERE conversation_id = c.id) AS turn_id, "
            "  (SELECT id FROM turns WHERE conversation_id = c.id AND route = ? "
            "   ORDER BY id DESC LIMIT 1) AS handoff_turn, "
            "  (SELECT text FROM messages WHERE conversation_id = c.id AND author = ? "
            "   ORDER BY id DESC LIMIT 1) AS user_text "
            f"FROM conversations c WHERE c.status IN (?, ?) "
            f"ORDER BY {PRIORITY_SQL}, c.handoff_at, c.created_at, c.id LIMIT ?",
            [
                Route.HANDOFF.value,
                Author.CUSTOMER.value,
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
                limit,
            ],
        )
        return [
            QueueItem(
                QueueKind.HANDOFF,
                self._handoff_why(row),
                row["id"],
                row["turn_id"],
                ConversationStatus(row["status"]),
                row["assigned_to"],
                row["user_text"],
                row["handoff_at"],
            )
            for row in rows
        ]

    def _to_review(self, below: float, limit: int) -> list[QueueItem]:
        rows = self._read(
            "SELECT * FROM ("
            "  SELECT t.id, t.conversation_id, t.user_text, t.created_at, t.confidence, "
            "    t.route, t.intent, c.status, c.assigned_to, "
            "    (SELECT rating FROM feedback f WHERE f.turn_id = t.id "
            "     ORDER BY f.id DESC LIMIT 1) AS rating "
            "  FROM turns t JOIN conversations c ON c.id = t.conversation_id "
            "  WHERE c.status NOT IN (?, ?) AND t.route NOT IN (?, ?) "
            "    AND NOT EXISTS (SELECT 1 FROM agent_actions a "
            "      WHERE a.conversation_id = t.conversation_id AND a.created_at >= t.created_at)"
            ") r "
            "WHERE r.rating = -1 OR (r.confidence < ? AND r.route NOT IN (?, ?)) "
            "ORDER BY r.id DESC LIMIT ?",
            [
                ConversationStatus.WAITING.value,
                ConversationStatus.WITH_AGENT.value,
                Route.HANDOFF.value,
                Route.AGENT.value,
                below,
                Route.REFUSE.value,
                Route.CLARIFY.value,
                limit,
            ],
        )
        items = []
        for row in rows:
            if row["rating"] == -1:
                kind, why = QueueKind.THUMBS_DOWN, "thumbs down"
            else:
                kind = QueueKind.LOW_CONFIDENCE
                why = f"low confidence {row['confidence']:.2f}"
                if row["intent"]:
                    why += f" ({row['intent']})"
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

    def _handoff_why(self, row: dict[str, Any]) -> str:
        """Why a conversation is in the queue, in plain words."""
        kind = HandoffKind(row["handoff_kind"]) if row["handoff_kind"] else None
        if kind is HandoffKind.ASKED:
            return "asked for a person"
        if kind is HandoffKind.ALWAYS_HUMAN:
            intent = self._turn_intent(row["handoff_turn"])
            return (
                f"always handled by a person: {intent}" if intent else "always handled by a person"
            )
        if kind is HandoffKind.MISUNDERSTOOD and row["handoff_turn"] is not None:
            return f"not understood {self._misunderstood_run(row['handoff_turn'])} times running"
        if kind is HandoffKind.MISUNDERSTOOD:
            return "not understood several times running"
        return f"handed off: {row['handoff_reason']}" if row["handoff_reason"] else "handed off"

    def _turn_intent(self, turn_id: int | None) -> str | None:
        if turn_id is None:
            return None
        found = self._read_one("SELECT intent FROM turns WHERE id = ?", [turn_id])
        return found["intent"] if found else None

    def _misunderstood_run(self, handoff_turn: int) -> int:
        """The messages running not understood, the handoff turn's own included, counted as
        `assistant.routing.fallback.misunderstood_after` does: each clarifying question
        counts unless its message repeats the one before, and a refusal between them neither
        counts nor ends the run."""
        rows = self._read(
            "SELECT route, user_text FROM turns WHERE conversation_id = "
            "  (SELECT conversation_id FROM turns WHERE id = ?) AND id < ? ORDER BY id DESC",
            [handoff_turn, handoff_turn],
        )
        turns = [(row["route"], row["user_text"]) for row in rows]
        count = 1
        for (route, text), (_, before) in zip(turns, [*turns[1:], (None, None)], strict=True):
            if route == Route.CLARIFY:
                count += _folded(text) != _folded(before)
            elif route != Route.REFUSE:
                break
        return count


# A handed-off conversation's place in the queue: its kind's priority; no kind (a handoff
# logged before kinds were, or one an agent made) goes with the last.
PRIORITY_SQL = (
    "CASE c.handoff_kind "
    + " ".join(f"WHEN '{kind.value}' THEN {kind.priority}" for kind in HandoffKind)
    + f" ELSE {max(kind.priority for kind in HandoffKind)} END"
)


def _folded(text: str | None) -> str | None:
    return repeat_form(text) if text is not None else None

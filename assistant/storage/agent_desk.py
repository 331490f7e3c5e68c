"""What the agent desk does: the queue, the transcript, taking, replying, correcting, resolving.

Every agent action is a row in `agent_actions`, linked to the turn it concerns.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from assistant.core.errors import HeldByAnotherAgent, MessageError, UnknownConversation, UnknownTurn
from assistant.core.records import (
    ActionKind,
    Author,
    ConversationStatus,
    HandoffKind,
    QueueItem,
    QueueKind,
)
from assistant.core.types import Route
from assistant.storage.connection import CORRECTION_SQL, SQLiteConnection, _now, _redacted
from assistant.text.redaction import Redactor


class SQLiteAgentDesk(SQLiteConnection):
    """The support team's side of the log (`assistant.core.seams.AgentDesk`)."""

    def handoff(self, conversation_id: str, reason: str) -> None:
        """Put a conversation in the agent queue; the bot stops answering it."""
        with self._write_lock, self._db.atomic():
            self._require_conversation(conversation_id)
            self._enter_queue(conversation_id, reason, _now())

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
            raise MessageError("the reply is empty")
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
            raise MessageError("the corrected intent is empty")
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

    def review_answer(
        self,
        message_id: int,
        reviewer: str,
        approved: bool,
        question: str | None = None,
        answer: str | None = None,
    ) -> int:
        """Approve an agent's reply for reuse, or reject it; returns the review's id.

        Only an approved answer joins the retrieval index at the next retraining, as the
        Q&A pair approved: `question` and `answer` (redacted) default to the customer's
        turn and the reply as logged, and may be edited into a reusable pair. Every
        review is kept, with who made it and when; the latest for a turn counts.
        """
        if not reviewer.strip():
            raise ValueError("a review needs the reviewer's name")
        with self._write_lock, self._db.atomic():
            line = self._agent_line(message_id)
            turn = self._require_turn(line["turn_id"]) if line["turn_id"] else {}
            question = (question or turn.get("user_text") or "").strip()
            answer = (answer or line["text"]).strip()
            if approved and not (question and answer):
                raise MessageError("an approved answer needs its question and answer")
            row = self._db["reuse_reviews"].insert(
                {
                    "message_id": message_id,
                    "turn_id": line["turn_id"],
                    "conversation_id": line["conversation_id"],
                    "approved": int(approved),
                    "actor": reviewer,
                    "created_at": _now(),
                    "question": self._redact(question) if approved else None,
                    "answer": self._redact(answer) if approved else None,
                }
            )
            return int(row.last_pk)

    def _agent_line(self, message_id: int) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT id, conversation_id, turn_id, text FROM messages WHERE id = ? AND author = ?",
            [message_id, Author.AGENT.value],
        ).fetchone()
        if row is None:
            raise MessageError(f"message {message_id} is not an agent's reply")
        return dict(zip(("id", "conversation_id", "turn_id", "text"), row, strict=True))

    def answers_to_review(self, limit: int = 100) -> list[dict[str, Any]]:
        """Agents' replies no one has approved or rejected for reuse yet, oldest first."""
        db = self._reader()
        try:
            return list(
                db.query(
                    "SELECT m.id, m.conversation_id, m.turn_id, m.agent, m.text, m.created_at, "
                    "  t.user_text AS question "
                    "FROM messages m LEFT JOIN turns t ON t.id = m.turn_id "
                    "WHERE m.author = ? AND NOT EXISTS "
                    "  (SELECT 1 FROM reuse_reviews r WHERE r.message_id = m.id) "
                    "ORDER BY m.id LIMIT ?",
                    [Author.AGENT.value, limit],
                )
            )
        finally:
            db.close()

    def reviews(self, message_id: int) -> list[dict[str, Any]]:
        """Every reuse review of an agent's reply, oldest first."""
        db = self._reader()
        try:
            return list(
                db["reuse_reviews"].rows_where("message_id = ?", [message_id], order_by="id")
            )
        finally:
            db.close()

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
                    f"COALESCE(({CORRECTION_SQL}), t.intent) AS final_intent "
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
        db = self._reader()
        try:
            return self._handed_off(db, limit) + self._to_review(db, low_confidence_below, limit)
        finally:
            db.close()

    @staticmethod
    def _handed_off(db: sqlite_utils.Database, limit: int) -> list[QueueItem]:
        rows = list(
            db.query(
                "SELECT c.id, c.status, c.handoff_reason, c.handoff_kind, c.handoff_at, "
                "  c.assigned_to, "
                "  (SELECT MAX(id) FROM turns WHERE conversation_id = c.id) AS turn_id, "
                "  (SELECT id FROM turns WHERE conversation_id = c.id AND route = ? "
                "   ORDER BY id DESC LIMIT 1) AS handoff_turn, "
                "  (SELECT text FROM messages WHERE conversation_id = c.id AND author = ? "
                "   ORDER BY id DESC LIMIT 1) AS user_text "
                f"FROM conversations c WHERE c.status IN (?, ?) "
                f"ORDER BY {PRIORITY_SQL}, c.handoff_at, c.rowid LIMIT ?",
                [
                    Route.HANDOFF.value,
                    Author.CUSTOMER.value,
                    ConversationStatus.WAITING.value,
                    ConversationStatus.WITH_AGENT.value,
                    limit,
                ],
            )
        )
        return [
            QueueItem(
                QueueKind.HANDOFF,
                _handoff_why(db, row),
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
            "  AND (rating = -1 OR (t.confidence < ? AND t.route NOT IN (?, ?))) "
            "ORDER BY t.id DESC LIMIT ?",
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


# A handed-off conversation's place in the queue: its kind's priority; no kind (a handoff
# logged before kinds were, or one an agent made) goes with the last.
PRIORITY_SQL = (
    "CASE c.handoff_kind "
    + " ".join(f"WHEN '{kind.value}' THEN {kind.priority}" for kind in HandoffKind)
    + f" ELSE {max(kind.priority for kind in HandoffKind)} END"
)


def _handoff_why(db: sqlite_utils.Database, row: dict[str, Any]) -> str:
    """Why a conversation is in the queue, in plain words."""
    kind = HandoffKind(row["handoff_kind"]) if row["handoff_kind"] else None
    if kind is HandoffKind.ASKED:
        return "asked for a person"
    if kind is HandoffKind.ALWAYS_HUMAN:
        intent = _turn_intent(db, row["handoff_turn"])
        return f"always handled by a person: {intent}" if intent else "always handled by a person"
    if kind is HandoffKind.MISUNDERSTOOD and row["handoff_turn"] is not None:
        return f"not understood {_misunderstood_run(db, row['handoff_turn'])} times running"
    if kind is HandoffKind.MISUNDERSTOOD:
        return "not understood several times running"
    return f"handed off: {row['handoff_reason']}" if row["handoff_reason"] else "handed off"


def _turn_intent(db: sqlite_utils.Database, turn_id: int | None) -> str | None:
    if turn_id is None:
        return None
    found = db.execute("SELECT intent FROM turns WHERE id = ?", [turn_id]).fetchone()
    return found[0] if found else None


def _misunderstood_run(db: sqlite_utils.Database, handoff_turn: int) -> int:
    """The messages running not understood, the handoff turn's own included, counted as
    `assistant.routing.fallback.misunderstood_after` does: each clarifying question
    counts unless its message repeats the one before, and a refusal between them neither
    counts nor ends the run."""
    turns = db.execute(
        "SELECT route, user_text FROM turns WHERE conversation_id = "
        "  (SELECT conversation_id FROM turns WHERE id = ?) AND id < ? ORDER BY id DESC",
        [handoff_turn, handoff_turn],
    ).fetchall()
    count = 1
    for (route, text), (_, before) in zip(turns, [*turns[1:], (None, None)], strict=True):
        if route == Route.CLARIFY:
            count += _folded(text) != _folded(before)
        elif route != Route.REFUSE:
            break
    return count


def _folded(text: str | None) -> str | None:
    """A message as compared for a repeat (`assistant.core.conversation.message_digest`)."""
    return " ".join(text.casefold().split()) if text is not None else None


def _reply_action(
    text: str, suggestion: str | None, redact: Redactor
) -> tuple[ActionKind, dict[str, Any]]:
    if suggestion is None:
        return ActionKind.REPLY_SENT, {"text": text}
    original = redact(suggestion.strip())
    if original == text:
        return ActionKind.SUGGESTION_USED, {"text": text}
    return ActionKind.SUGGESTION_EDITED, {"original": original, "edited": text}

"""What the agent desk does: the transcript, taking, replying, correcting, resolving (the
queue is in agent_queue.py).

Every agent action is a row in `agent_actions`, linked to the turn it concerns.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.core.errors import HeldByAnotherAgent, MessageError, UnknownConversation, UnknownTurn
from assistant.core.records import (
    ActionKind,
    Author,
    ConversationStatus,
)
from assistant.storage.agent_queue import SqlAgentQueue
from assistant.storage.connection import _now, _redacted
from assistant.text.redaction import Redactor


class SqlAgentDesk(SqlAgentQueue):
    """The support team's side of the log (`assistant.core.seams.AgentDesk`)."""

    def handoff(self, conversation_id: str, reason: str) -> None:
        """Put a conversation in the agent queue; the bot stops answering it."""

        def change():
            self._require_conversation(conversation_id)
            self._enter_queue(conversation_id, reason, _now())

        self._write(change)

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
        return self._insert(
            "agent_actions",
            {
                "conversation_id": conversation_id,
                "turn_id": turn_id,
                "kind": kind.value,
                "actor": actor,
                "created_at": now,
                "payload": json.dumps(_redacted(payload, self._redact), ensure_ascii=False),
            },
        )

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
        self._update_conversation(
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

        def change():
            self._assign(conversation_id, agent, _now(), take_over=True)

        self._write(change)

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

        def change():
            now = _now()
            self._assign(conversation_id, agent, now, take_over=False)
            concerned = turn_id
            if concerned is None:
                concerned = self._last_turn_id(conversation_id)
            elif self._require_turn(concerned)["conversation_id"] != conversation_id:
                raise UnknownTurn(concerned)
            clean = self._redact(text.strip())
            message_id = self._insert(
                "messages",
                self._message(conversation_id, concerned, Author.AGENT, clean, now, agent),
            )
            kind, payload = _reply_action(clean, suggestion, self._redact)
            if suggestion_info:
                payload["suggestion"] = suggestion_info
            payload["message_id"] = message_id
            self._act(conversation_id, concerned, kind, agent, payload, now)
            return message_id

        return self._write(change)

    def correct_intent(self, turn_id: int, agent: str, intent: str) -> int:
        """Record the right intent of a customer turn; the latest correction counts."""
        intent = intent.strip()
        if not intent:
            raise MessageError("the corrected intent is empty")

        def change():
            turn = self._require_turn(turn_id)
            previous = self._db.one(
                f"SELECT {self._engine.json_text('payload', 'new')} AS new FROM agent_actions "
                "WHERE turn_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                [turn_id, ActionKind.INTENT_CORRECTED.value],
            )
            old = previous["new"] if previous else turn["intent"]
            return self._act(
                turn["conversation_id"],
                turn_id,
                ActionKind.INTENT_CORRECTED,
                agent,
                {"old": old, "new": intent, "model": turn["intent"]},
                _now(),
            )

        return self._write(change)

    def resolve(self, conversation_id: str, agent: str) -> None:
        """Close the conversation for the support team; the bot answers it again."""

        def change():
            row = self._require_conversation(conversation_id)
            now = _now()
            self._update_conversation(
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

        self._write(change)

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

        def change() -> int:
            line = self._agent_line(message_id)
            turn = self._require_turn(line["turn_id"]) if line["turn_id"] else {}
            pair = (question or turn.get("user_text") or "").strip()
            reply = (answer or line["text"]).strip()
            if approved and not (pair and reply):
                raise MessageError("an approved answer needs its question and answer")
            return self._insert(
                "reuse_reviews",
                {
                    "message_id": message_id,
                    "turn_id": line["turn_id"],
                    "conversation_id": line["conversation_id"],
                    "approved": int(approved),
                    "actor": reviewer,
                    "created_at": _now(),
                    "question": self._redact(pair) if approved else None,
                    "answer": self._redact(reply) if approved else None,
                },
            )

        return self._write(change)

    def _agent_line(self, message_id: int) -> dict[str, Any]:
        row = self._db.one(
            "SELECT id, conversation_id, turn_id, text FROM messages WHERE id = ? AND author = ?",
            [message_id, Author.AGENT.value],
        )
        if row is None:
            raise MessageError(f"message {message_id} is not an agent's reply")
        return row

    def answers_to_review(self, limit: int = 100) -> list[dict[str, Any]]:
        """Agents' replies no one has approved or rejected for reuse yet, oldest first."""
        return self._read(
            "SELECT m.id, m.conversation_id, m.turn_id, m.agent, m.text, m.created_at, "
            "  t.user_text AS question "
            "FROM messages m LEFT JOIN turns t ON t.id = m.turn_id "
            "WHERE m.author = ? AND NOT EXISTS "
            "  (SELECT 1 FROM reuse_reviews r WHERE r.message_id = m.id) "
            "ORDER BY m.id LIMIT ?",
            [Author.AGENT.value, limit],
        )

    def reviews(self, message_id: int) -> list[dict[str, Any]]:
        """Every reuse review of an agent's reply, oldest first."""
        return self._read(
            "SELECT * FROM reuse_reviews WHERE message_id = ? ORDER BY id", [message_id]
        )

    def messages_since(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """Transcript lines newer than `after_id`, oldest first: what a chat page polls for."""
        if not self._exists("conversations", conversation_id):
            raise UnknownConversation(conversation_id)
        return self._read(
            "SELECT id, turn_id, author, agent, text, created_at FROM messages "
            "WHERE conversation_id = ? AND id > ? ORDER BY id",
            [conversation_id, after_id],
        )

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        """The whole transcript for an agent: each line with its turn's route and intents.

        `intent` is the model's, `final_intent` the agent's correction if there is one.
        """
        if not self._exists("conversations", conversation_id):
            raise UnknownConversation(conversation_id)
        return self._read(
            f"SELECT m.id, m.turn_id, m.author, m.agent, m.text, m.created_at, "
            f"t.route, t.intent, t.confidence, "
            f"COALESCE(({self._correction_sql()}), t.intent) AS final_intent "
            f"FROM messages m LEFT JOIN turns t ON t.id = m.turn_id "
            f"WHERE m.conversation_id = ? ORDER BY m.id",
            [conversation_id],
        )

    def actions(self, conversation_id: str) -> list[dict[str, Any]]:
        """The agents' actions on a conversation, oldest first, payloads decoded."""
        rows = self._read(
            "SELECT * FROM agent_actions WHERE conversation_id = ? ORDER BY id", [conversation_id]
        )
        return [{**row, "payload": json.loads(row["payload"])} for row in rows]


def _reply_action(
    text: str, suggestion: str | None, redact: Redactor
) -> tuple[ActionKind, dict[str, Any]]:
    if suggestion is None:
        return ActionKind.REPLY_SENT, {"text": text}
    original = redact(suggestion.strip())
    if original == text:
        return ActionKind.SUGGESTION_USED, {"text": text}
    return ActionKind.SUGGESTION_EDITED, {"original": original, "edited": text}

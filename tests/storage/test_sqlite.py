import sqlite3

import pytest
import sqlite_utils

from assistant.core.errors import HeldByAnotherAgent, UnknownConversation, UnknownTurn
from assistant.core.records import (
    ActionKind,
    ConversationState,
    ConversationStatus,
    QueueKind,
    TurnRecord,
)
from assistant.core.types import Route
from assistant.storage.migrations import MIGRATIONS
from assistant.storage.sqlite_engine import SQLiteEngine, SQLiteSchema
from assistant.storage.store import ConversationStore
from assistant.text.redaction import Redactor


def record(conversation_id, text="hello", **changes):
    values = dict(
        conversation_id=conversation_id,
        user_text=text,
        reply_text="hi there",
        route="template",
        intent="greeting",
        confidence=0.9,
        reason="confident intent greeting",
        sources=[{"question": "hi", "score": 0.9}],
        trace={"route": "template"},
        latency_ms=12.5,
        model_version="intent:v1 index:abc",
    )
    values.update(changes)
    return TurnRecord(**values)


def test_turns_are_logged_in_order_with_their_trace(store):
    conversation = store.start_conversation()
    first = store.log_turn(record(conversation, "hello"))
    second = store.log_turn(record(conversation, "thanks"))
    turns = store.turns(conversation)
    assert [t["id"] for t in turns] == [first, second]
    assert [t["position"] for t in turns] == [1, 2]
    assert turns[0]["model_version"] == "intent:v1 index:abc"
    assert turns[0]["latency_ms"] == 12.5


def test_personal_data_is_redacted_before_storage(store):
    conversation = store.start_conversation()
    turn = store.log_turn(
        record(
            conversation,
            "I'm ana@example.com, card 4111 1111 1111 1111, phone +1 555 014 2233",
            reply_text="We will write to ana@example.com",
        )
    )
    stored = store.turn(turn)
    assert stored["user_text"] == "I'm [EMAIL], card [CARD], phone [PHONE]"
    assert stored["reply_text"] == "We will write to [EMAIL]"
    if isinstance(store._engine, SQLiteEngine):  # nor anywhere in the file
        path = store._engine.path
        raw = path.read_bytes() + path.with_name("log.db-wal").read_bytes()
        assert b"ana@example.com" not in raw


def test_database_uses_wal_mode(sqlite_store):
    store = sqlite_store
    connection = sqlite3.connect(store._engine.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_conversation_state_round_trips(store):
    conversation = store.start_conversation()
    assert store.state(conversation) == ConversationState()
    state = ConversationState("order_status", {"order_id": "PP-123456"})
    store.log_turn(record(conversation, next_state=state))
    assert store.state(conversation) == state


def test_a_turn_opens_on_the_state_and_status_read_together(store):
    conversation = store.start_conversation()
    state = ConversationState("order_status", {"order_id": "PP-123456"}, misunderstood=1)
    store.log_turn(record(conversation, next_state=state, handoff_reason="asked for a person"))
    assert store.opening(conversation) == (state, ConversationStatus.WAITING)
    assert store.opening(conversation) == (store.state(conversation), store.status(conversation))
    with pytest.raises(UnknownConversation):
        store.opening("no-such-conversation")


def test_feedback_is_linked_to_its_turn(store):
    conversation = store.start_conversation()
    turn = store.log_turn(record(conversation))
    store.add_feedback(turn, conversation, -1, comment="wrong, mail me at bo@example.net")
    [feedback] = store.feedback(turn)
    assert feedback["rating"] == -1
    assert feedback["comment"] == "wrong, mail me at [EMAIL]"
    with pytest.raises(UnknownTurn):
        store.add_feedback(9999, conversation, 1)
    with pytest.raises(ValueError, match="rating"):
        store.add_feedback(turn, conversation, 5)


def test_unknown_conversation_is_refused(store):
    with pytest.raises(UnknownConversation):
        store.state("not-a-conversation")
    with pytest.raises(UnknownConversation):
        store.log_turn(record("not-a-conversation"))


def test_reopening_keeps_everything_and_does_not_migrate_twice(tmp_path):
    path = tmp_path / "log.db"
    first = ConversationStore(path)
    conversation = first.start_conversation()
    first.log_turn(record(conversation))
    first.close()
    reopened = ConversationStore(path)
    assert reopened.schema_version == len(MIGRATIONS)
    assert len(reopened.turns(conversation)) == 1


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "log.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    connection.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        ConversationStore(path)


def test_a_failed_write_leaves_earlier_turns_intact(store):
    conversation = store.start_conversation()
    store.log_turn(record(conversation, "kept"))
    with pytest.raises(TypeError):
        store.log_turn(record(conversation, "lost", sources={"not": object()}))
    assert [t["user_text"] for t in store.turns(conversation)] == ["kept"]
    store.log_turn(record(conversation, "after"))
    assert [t["position"] for t in store.turns(conversation)] == [1, 2]


WRITER = """
import sys
from pathlib import Path
from assistant.core.records import TurnRecord
from assistant.storage.store import ConversationStore
store = ConversationStore(Path(sys.argv[1]))
conversation = store.start_conversation()
print(conversation, flush=True)
for n in range(100_000):
    store.log_turn(TurnRecord(conversation, f"message {n}", "reply", "template", "greeting",
                              0.9, "why", [], {"n": n}, 1.0, "v1"))
    if n == 50:
        print("written", flush=True)
"""


def test_a_killed_writer_loses_no_committed_turn(tmp_path):
    import signal
    import subprocess
    import sys

    path = tmp_path / "log.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    conversation = writer.stdout.readline().strip()
    assert writer.stdout.readline().strip() == "written"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)

    reopened = ConversationStore(path)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    turns = reopened.turns(conversation)
    assert len(turns) > 50
    assert [t["position"] for t in turns] == list(range(1, len(turns) + 1))
    assert [t["user_text"] for t in turns] == [f"message {n}" for n in range(len(turns))]
    reopened.log_turn(record(conversation, "after the crash"))
    assert reopened.turns(conversation)[-1]["position"] == len(turns) + 1


# Schema upgrades.


def _version_1_database(path):
    """A database as the first released version wrote it: only the first migration run."""
    db = sqlite_utils.Database(path)
    MIGRATIONS[0](SQLiteSchema(db.conn))
    db.execute("PRAGMA user_version = 1")
    db["conversations"].insert(
        {
            "id": "old",
            "channel": "chat",
            "created_at": "2024-01-01T00:00:00.000+00:00",
            "updated_at": "2024-01-01T00:00:00.000+00:00",
            "pending_intent": None,
            "slots": "{}",
        }
    )
    for position, (question, answer) in enumerate([("hi", "hello!"), ("bye", "goodbye!")], 1):
        db["turns"].insert(
            {
                "conversation_id": "old",
                "position": position,
                "created_at": f"2024-01-01T00:00:0{position}.000+00:00",
                "user_text": question,
                "reply_text": answer,
                "route": "template",
                "intent": "greeting",
                "confidence": 0.9,
                "reason": "r",
                "sources": "[]",
                "trace": "{}",
                "latency_ms": 5.0,
                "model_version": "v1",
            }
        )
    db.close()


def test_a_database_from_the_first_version_is_upgraded_in_place(tmp_path):
    path = tmp_path / "log.db"
    _version_1_database(path)
    store = ConversationStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.status("old") == ConversationStatus.BOT
    assert [(m["author"], m["text"]) for m in store.history("old")] == [
        ("customer", "hi"),
        ("bot", "hello!"),
        ("customer", "bye"),
        ("bot", "goodbye!"),
    ]
    assert [t["user_text"] for t in store.turns("old")] == ["hi", "bye"]
    turn = store.log_turn(record("old", "still works"))
    store.agent_reply("old", "ana", "An agent here.")
    assert store.history("old")[-1]["text"] == "An agent here."
    assert store.turn(turn)["position"] == 3
    store.close()
    assert ConversationStore(path).schema_version == len(MIGRATIONS)


# Handoff, the agent queue and the agents' work.


def handed_off(store, text="I want a person"):
    conversation = store.start_conversation()
    store.log_turn(
        record(
            conversation,
            text,
            route="handoff",
            intent="human_agent",
            handoff_reason="the customer asked for a person",
        )
    )
    return conversation


def test_a_handoff_turn_puts_the_conversation_in_the_queue(store):
    conversation = handed_off(store)
    details = store.conversation(conversation)
    assert details.status == ConversationStatus.WAITING
    assert details.status.with_people
    assert details.handoff_reason == "the customer asked for a person"
    assert details.handoff_at
    [item] = store.queue()
    assert item.kind == QueueKind.HANDOFF
    assert item.conversation_id == conversation
    assert "asked for a person" in item.why
    assert item.user_text == "I want a person"


def test_an_explicit_handoff_and_unknown_conversations(store):
    conversation = store.start_conversation()
    store.handoff(conversation, "customer called phone support, mail me at x@example.com")
    details = store.conversation(conversation)
    assert details.status == ConversationStatus.WAITING
    assert details.handoff_reason == "customer called phone support, mail me at [EMAIL]"
    with pytest.raises(UnknownConversation):
        store.handoff("nope", "why")
    with pytest.raises(UnknownConversation):
        store.messages_since("nope")


def test_the_business_contacts_in_an_agent_reply_reach_the_customer(log_location, tmp_path):
    store = ConversationStore(log_location, Redactor(["help@shop.example"]), tmp_path / "key")
    conversation = store.start_conversation()
    store.log_turn(record(conversation, "I'm ana@example.com, who do I write to?"))
    store.agent_reply(conversation, "ana", "Write to help@shop.example, ana@example.com")
    lines = [line["text"] for line in store.messages_since(conversation)]
    assert lines[0] == "I'm [EMAIL], who do I write to?"
    assert lines[-1] == "Write to help@shop.example, [EMAIL]"
    store.close()


def test_an_agent_reply_reaches_the_transcript_and_takes_the_conversation(store):
    conversation = handed_off(store)
    seen = store.messages_since(conversation)
    assert [m["author"] for m in seen] == ["customer", "bot"]
    message_id = store.agent_reply(conversation, "ana", "Hi, Ana here. Mail ana@shop.example")
    new = store.messages_since(conversation, seen[-1]["id"])
    assert [(m["id"], m["author"], m["agent"]) for m in new] == [(message_id, "agent", "ana")]
    assert new[0]["text"] == "Hi, Ana here. Mail [EMAIL]"
    assert store.messages_since(conversation, message_id) == []
    details = store.conversation(conversation)
    assert (details.status, details.assigned_to) == (ConversationStatus.WITH_AGENT, "ana")
    kinds = [a["kind"] for a in store.actions(conversation)]
    assert kinds == [ActionKind.TAKEN, ActionKind.REPLY_SENT]
    with pytest.raises(ValueError, match="empty"):
        store.agent_reply(conversation, "ana", "   ")


def test_an_agent_cannot_reply_over_another_agent_without_taking_over(store):
    conversation = handed_off(store)
    store.take(conversation, "bo")
    with pytest.raises(HeldByAnotherAgent) as held:
        store.agent_reply(conversation, "ana", "Ana here.")
    assert held.value.holder == "bo"
    assert store.conversation(conversation).assigned_to == "bo"
    assert [m["author"] for m in store.messages_since(conversation)].count("agent") == 0
    store.take(conversation, "ana")
    store.agent_reply(conversation, "ana", "Ana here.")
    assert store.conversation(conversation).assigned_to == "ana"


def test_suggestions_used_or_edited_are_told_apart(store):
    conversation = handed_off(store)
    turn = store.turns(conversation)[0]["id"]
    store.take(conversation, "bo")
    store.agent_reply(
        conversation, "bo", "Standard delivery is $4.95.", "Standard delivery is $4.95."
    )
    store.agent_reply(
        conversation,
        "bo",
        "Express is $12.95.",
        "Standard delivery is $4.95.",
        suggestion_info={"rank": 2, "route": "retrieval", "score": 0.8},
    )
    actions = store.actions(conversation)
    assert [a["kind"] for a in actions] == ["taken", "suggestion_used", "suggestion_edited"]
    assert all(a["actor"] == "bo" and a["turn_id"] == turn and a["created_at"] for a in actions)
    edited = actions[2]["payload"]
    assert edited["original"] == "Standard delivery is $4.95."
    assert edited["edited"] == "Express is $12.95."
    assert edited["suggestion"] == {"rank": 2, "route": "retrieval", "score": 0.8}


def test_intent_corrections_keep_old_and_new_and_the_latest_counts(store):
    conversation = store.start_conversation()
    turn = store.log_turn(record(conversation, "parcel never came", intent="order_status"))
    store.correct_intent(turn, "ana", "missing_package")
    store.correct_intent(turn, "bo", "damaged_item")
    payloads = [a["payload"] for a in store.actions(conversation)]
    assert payloads[0] == {"old": "order_status", "new": "missing_package", "model": "order_status"}
    assert payloads[1]["old"] == "missing_package"
    [customer, _bot] = store.history(conversation)
    assert (customer["intent"], customer["final_intent"]) == ("order_status", "damaged_item")
    with pytest.raises(UnknownTurn):
        store.correct_intent(10**6, "ana", "greeting")
    with pytest.raises(ValueError):
        store.correct_intent(turn, "", "greeting")


def test_resolving_returns_the_conversation_to_the_bot(store):
    conversation = handed_off(store)
    store.agent_reply(conversation, "ana", "Done, anything else?")
    store.resolve(conversation, "ana")
    details = store.conversation(conversation)
    assert details.status == ConversationStatus.RESOLVED
    assert not details.status.with_people
    assert details.resolved_at
    assert store.queue() == []
    assert store.actions(conversation)[-1]["kind"] == "resolved"
    # A later handoff puts it back in the queue.
    store.log_turn(record(conversation, "again please", route="handoff", handoff_reason="again"))
    assert store.status(conversation) == ConversationStatus.WAITING


def test_a_handoff_while_with_an_agent_keeps_the_agent(store):
    conversation = handed_off(store)
    store.take(conversation, "ana")
    store.handoff(conversation, "another reason")
    details = store.conversation(conversation)
    assert (details.status, details.assigned_to) == (ConversationStatus.WITH_AGENT, "ana")


def test_the_queue_lists_thumbs_down_and_low_confidence_turns_until_an_agent_acts(store):
    waiting = handed_off(store)
    conversation = store.start_conversation()
    fine = store.log_turn(record(conversation, "fine", confidence=0.95))
    unsure = store.log_turn(record(conversation, "unsure", confidence=0.3))
    disliked = store.log_turn(record(conversation, "disliked", confidence=0.9))
    store.add_feedback(disliked, conversation, -1)
    store.add_feedback(fine, conversation, 1)
    store.log_turn(
        record(conversation, "silent", route=Route.AGENT.value, intent=None, confidence=0.0)
    )
    items = store.queue(low_confidence_below=0.5)
    assert [(i.kind, i.turn_id or i.conversation_id) for i in items] == [
        (QueueKind.HANDOFF, store.turns(waiting)[0]["id"]),
        (QueueKind.THUMBS_DOWN, disliked),
        (QueueKind.LOW_CONFIDENCE, unsure),
    ]
    assert "thumbs down" in items[1].why
    assert items[2].why == "low confidence 0.30 (greeting)"
    store.correct_intent(unsure, "ana", "greeting")
    assert [i.kind for i in store.queue()] == [QueueKind.HANDOFF]


def test_agent_writes_refuse_unknown_ids(store):
    conversation = store.start_conversation()
    other = store.start_conversation()
    other_turn = store.log_turn(record(other))
    with pytest.raises(UnknownConversation):
        store.agent_reply("nope", "ana", "hi")
    with pytest.raises(UnknownConversation):
        store.resolve("nope", "ana")
    with pytest.raises(UnknownTurn):
        store.agent_reply(conversation, "ana", "hi", turn_id=other_turn)
    assert store.messages_since(conversation) == []

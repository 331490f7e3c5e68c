import sqlite3

import pytest

from assistant.store import (
    MIGRATIONS,
    ConversationState,
    ConversationStore,
    TurnRecord,
    UnknownConversation,
    UnknownTurn,
)


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


@pytest.fixture
def store(tmp_path):
    opened = ConversationStore(tmp_path / "log.db")
    yield opened
    opened.close()


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
    raw = (store.path).read_bytes() + store.path.with_name("log.db-wal").read_bytes()
    assert b"ana@example.com" not in raw


def test_database_uses_wal_mode(store):
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_conversation_state_round_trips(store):
    conversation = store.start_conversation()
    assert store.state(conversation) == ConversationState()
    state = ConversationState("order_status", {"order_id": "PP-123456"})
    store.log_turn(record(conversation, next_state=state))
    assert store.state(conversation) == state


def test_feedback_is_linked_to_its_turn(store):
    conversation = store.start_conversation()
    turn = store.log_turn(record(conversation))
    store.add_feedback(turn, -1, comment="wrong, mail me at bo@example.net")
    [feedback] = store.feedback(turn)
    assert feedback["rating"] == -1
    assert feedback["comment"] == "wrong, mail me at [EMAIL]"
    with pytest.raises(UnknownTurn):
        store.add_feedback(9999, 1)
    with pytest.raises(ValueError, match="rating"):
        store.add_feedback(turn, 5)


def test_unknown_conversation_is_refused(store):
    with pytest.raises(UnknownConversation):
        store.state("not-a-conversation")
    with pytest.raises(sqlite3.IntegrityError):
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
from assistant.store import ConversationStore, TurnRecord
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

import sqlite3

import psycopg
import pytest

from assistant.core.errors import ConfigError, StorageError
from assistant.core.records import ConversationState, HandoffKind, TurnRecord
from assistant.storage.contacts import KEY_FILE
from assistant.storage.copying import TABLES, copy_log
from assistant.storage.migrations import MIGRATIONS
from assistant.storage.store import ConversationStore

CONTACT = "lee@example.org"
NOW = 1_700_000_000.0
VERSION_1_LOG = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, channel TEXT, created_at TEXT,
    updated_at TEXT, pending_intent TEXT, slots TEXT);
CREATE TABLE turns (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL
    REFERENCES conversations(id), position INTEGER NOT NULL, created_at TEXT,
    user_text TEXT NOT NULL, reply_text TEXT NOT NULL, route TEXT NOT NULL, intent TEXT,
    confidence FLOAT, reason TEXT, sources TEXT, trace TEXT, latency_ms FLOAT,
    model_version TEXT);
CREATE TABLE feedback (id INTEGER PRIMARY KEY, turn_id INTEGER NOT NULL REFERENCES turns(id),
    rating INTEGER NOT NULL, comment TEXT, created_at TEXT);
INSERT INTO conversations VALUES ('c1', 'chat', '2024-01-01', '2024-01-01', NULL, '{}');
INSERT INTO turns (conversation_id, position, created_at, user_text, reply_text, route)
    VALUES ('c1', 1, '2024-01-01', 'hi', 'hello', 'template');
PRAGMA user_version = 1;
"""


class Interrupted(Exception):
    pass


def _record(conversation, text, route="template", intent="order_status", **extra):
    return TurnRecord(
        conversation_id=conversation,
        user_text=text,
        reply_text=f"About '{text}': here is what we know.",
        route=route,
        intent=intent,
        confidence=0.42 if route == "handoff" else 0.91,
        reason="matched",
        sources=[{"question": text, "answer": "It ships in two days.", "score": 0.7}],
        trace={"route": route, **({"handoff": "asked"} if route == "handoff" else {})},
        latency_ms=12.5,
        model_version="intent:v3",
        next_state=ConversationState("order_status", {"order": "A-1042"}, misunderstood=1),
        **extra,
    )


def _fill(store):
    """Conversations with every kind of row the log holds; returns their ids."""
    quiet, rated, handed_off = (store.start_conversation() for _ in range(3))
    unhappy = [store.log_turn(_record(quiet, f"question {n} about my parcel")) for n in range(3)]
    store.add_feedback(unhappy[-1], quiet, -1)
    first = store.log_turn(_record(rated, "how much is shipping to Oslo"))
    store.add_feedback(first, rated, -1, "not what I asked")
    store.add_feedback(first, rated, 1)
    store.log_turn(
        _record(
            handed_off,
            "I want a person",
            route="handoff",
            intent=None,
            handoff_reason="asked for a person",
            handoff_kind=HandoffKind.ASKED,
        )
    )
    store.save_contact(handed_off, CONTACT)
    reply = store.agent_reply(handed_off, "ana", "Hello, I am Ana; your parcel left today.")
    store.review_answer(reply, "sam", True, "Where is my parcel?", "It left our depot today.")
    store.agent_reply(handed_off, "ana", "Is there anything else I can do?")
    store.correct_intent(first, "ana", "shipping_cost")
    store.take(rated, "bo")
    store.resolve(rated, "bo")
    store.open_session("token-of-ana", "ana", "agent", NOW, 3600)
    store.reserve_sign_in("mallory", NOW, 600, 5)
    return [quiet, rated, handed_off]


def _everything(store, conversations):
    """What every role of the log reads, for comparing two logs."""
    return {
        "conversations": [store.conversation(c) for c in conversations],
        "states": [store.state(c) for c in conversations],
        "history": [store.history(c) for c in conversations],
        "actions": [store.actions(c) for c in conversations],
        "turns": [store.turns(c) for c in conversations],
        "turn_facts": store.turn_facts(),
        # in order of creation: those started in the same millisecond, in any order
        "conversation_facts": sorted(store.conversation_facts(), key=lambda c: c["id"]),
        "queue": store.queue(),
        "feedback_history": [store.feedback_history(t["id"]) for t in store.turn_facts()],
        "reviews": [store.reviews(m["id"]) for c in conversations for m in store.history(c)],
        "answers_to_review": store.answers_to_review(),
        "session": store.session_user("token-of-ana", "agent", NOW - 1),
        "failures": store.sign_in_failures("mallory", NOW - 1),
    }


@pytest.fixture
def sqlite_log(tmp_path):
    """A SQLite log with every kind of row, its contact key beside it; yields its path and
    what each role reads from it."""
    path = tmp_path / "conversations.db"
    store = ConversationStore(path)
    conversations = _fill(store)
    seen = _everything(store, conversations)
    store.close()
    return path, conversations, seen


@pytest.fixture
def target(postgres_server):
    return postgres_server.database_url()


def _opened(target, source_path):
    return ConversationStore(target, contact_key=source_path.parent / KEY_FILE)


def _assert_reads_the_same(target, path, conversations, seen):
    copied = _opened(target, path)
    try:
        assert _everything(copied, conversations) == seen
    finally:
        copied.close()


def _source_counts(path):
    with sqlite3.connect(path) as db:
        return {t.name: db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in TABLES}


def test_every_table_of_the_schema_is_copied(tmp_path):
    ConversationStore(tmp_path / "log.db").close()
    with sqlite3.connect(tmp_path / "log.db") as db:
        names = {
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not row[0].startswith("sqlite_")
        }
    assert names == {table.name for table in TABLES}


def test_every_role_reads_the_same_log_in_postgresql(sqlite_log, target):
    path, conversations, seen = sqlite_log
    report = copy_log(path, target, progress=False)
    assert all(table.complete for table in report)
    assert {t.table: t.copied for t in report} == _source_counts(path)
    copied = _opened(target, path)
    try:
        assert _everything(copied, conversations) == seen
        assert copied.conversation(conversations[2]).contact == CONTACT
        assert copied.schema_version == len(MIGRATIONS)
    finally:
        copied.close()


def test_a_second_run_copies_nothing_and_changes_nothing(sqlite_log, target):
    path, conversations, seen = sqlite_log
    copy_log(path, target, progress=False)
    again = copy_log(path, target, progress=False)
    assert [t.copied for t in again] == [0] * len(TABLES)
    assert all(t.complete for t in again)
    _assert_reads_the_same(target, path, conversations, seen)


def test_an_interrupted_copy_goes_on_where_it_stopped(sqlite_log, target):
    path, conversations, seen = sqlite_log
    chunks = []

    def stop_in_the_messages(table, rows):
        chunks.append(table)
        if table == "messages" and chunks.count("messages") == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        copy_log(path, target, chunk_rows=2, progress=False, after_chunk=stop_in_the_messages)
    partial = copy_log(path, target, chunk_rows=1_000, progress=False)
    by_table = {t.table: t for t in partial}
    assert by_table["conversations"].copied == 0 and by_table["turns"].copied == 0
    assert by_table["messages"].copied == _source_counts(path)["messages"] - 4
    assert all(t.complete for t in partial)
    _assert_reads_the_same(target, path, conversations, seen)


def test_a_target_with_rows_lost_since_a_copy_is_refused(sqlite_log, target):
    path = sqlite_log[0]
    copy_log(path, target, progress=False)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("DELETE FROM messages WHERE id = 1")
    with pytest.raises(ConfigError, match="database's messages is not a copy"):
        copy_log(path, target, progress=False)


def test_a_target_with_rows_of_its_own_is_refused_before_anything_is_copied(sqlite_log, target):
    path = sqlite_log[0]
    own = ConversationStore(target)
    own.start_conversation()
    own.close()
    with pytest.raises(ConfigError, match="database's conversations is not a copy"):
        copy_log(path, target, progress=False)
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT COUNT(*) FROM conversations").fetchone() == (1,)


def test_rows_written_to_the_source_during_the_copy_are_reported(sqlite_log, target):
    path = sqlite_log[0]

    def a_server_still_writing(table, rows):
        if table == "turns":
            with sqlite3.connect(path) as db:
                db.execute(
                    "INSERT INTO conversations (id, channel, slots) VALUES ('x', 'chat', '')"
                )

    report = copy_log(path, target, progress=False, after_chunk=a_server_still_writing)
    differing = [(t.table, t.source_rows, t.target_rows) for t in report if not t.complete]
    assert differing == [("conversations", 4, 3)]


def test_a_row_postgresql_refuses_stops_the_copy_with_the_rows_before_it_kept(tmp_path, target):
    path = tmp_path / "orphans.db"
    store = ConversationStore(path)
    conversation = store.start_conversation()
    store.log_turn(_record(conversation, "is my order on its way"))
    store.close()
    with sqlite3.connect(path) as db:  # a log from before the foreign keys were enforced
        db.execute(
            "INSERT INTO feedback (turn_id, conversation_id, rating) VALUES (99, ?, 1)",
            [conversation],
        )
    with pytest.raises(StorageError, match=r"copying feedback \(id 1 to 1\) failed"):
        copy_log(path, target, progress=False)
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT COUNT(*) FROM messages").fetchone() == (2,)


def test_turns_logged_in_postgresql_after_the_copy_get_fresh_ids(sqlite_log, target):
    path, conversations, _ = sqlite_log
    copy_log(path, target, progress=False)
    largest = {t.name: _source_largest_id(path, t.name) for t in TABLES if t.identity}
    copied = _opened(target, path)
    try:
        turn = copied.log_turn(_record(conversations[0], "and one more question"))
        reply = copied.agent_reply(conversations[2], "ana", "Anything else?")
        review = copied.review_answer(reply, "sam", False)
        feedback = copied.add_feedback(turn, conversations[0], 1)
        assert turn == largest["turns"] + 1
        assert reply == largest["messages"] + 3  # after the turn's two lines
        assert review == largest["reuse_reviews"] + 1
        assert feedback == largest["feedback"] + 1
        assert [t["position"] for t in copied.turns(conversations[0])] == [1, 2, 3, 4]
    finally:
        copied.close()


def _source_largest_id(path, table):
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]


def test_an_old_sqlite_log_is_upgraded_before_it_is_copied(tmp_path, target):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_1_LOG)
    report = {t.table: t for t in copy_log(path, target, progress=False)}
    assert (report["turns"].target_rows, report["messages"].target_rows) == (1, 2)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_target_that_is_not_postgresql_is_refused(sqlite_log, tmp_path):
    path = sqlite_log[0]
    with pytest.raises(ConfigError, match="postgresql://"):
        copy_log(path, str(tmp_path / "other.db"), progress=False)
    with pytest.raises(ConfigError, match=r"not mysql://\.\.\.$"):
        copy_log(path, "mysql://root:secret@db/log", progress=False)


def test_a_missing_source_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no SQLite log at"):
        copy_log(tmp_path / "nowhere.db", "postgresql://localhost/log", progress=False)
    assert not (tmp_path / "nowhere.db").exists()


def test_a_source_that_is_not_sqlite_is_refused(tmp_path, target):
    path = tmp_path / "notes.db"
    path.write_text("these are not the rows you are looking for\n" * 100)
    with pytest.raises(ConfigError, match="is not a SQLite log"):
        copy_log(path, target, progress=False)

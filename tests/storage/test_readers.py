"""SQLite's reads: one connection per thread, kept open, that sees each commit at once and
closes when its thread ends or the log is closed."""

import gc
import sqlite3
import threading

import pytest

from assistant.core.errors import UnknownConversation
from assistant.core.records import ConversationStatus
from assistant.storage.store import ConversationStore
from tests.storage.test_sqlite import record


def _thread_reader(store):
    with store._engine.reading() as session:
        return session.connection


def test_a_thread_reuses_its_reader_and_sees_each_commit_at_once(sqlite_store):
    store = sqlite_store
    conversation = store.start_conversation()
    assert store.state(conversation).pending_intent is None
    reader = _thread_reader(store)
    store.log_turn(record(conversation, "where is my order", handoff_reason="asked"))
    assert store.status(conversation) is ConversationStatus.WAITING
    assert _thread_reader(store) is reader
    with pytest.raises(UnknownConversation):
        store.state("no-such-conversation")


def test_a_thread_that_ends_drops_its_reader(sqlite_store):
    store = sqlite_store
    conversation = store.start_conversation()
    worker = threading.Thread(target=store.state, args=(conversation,))
    worker.start()
    worker.join()
    gc.collect()  # the thread's reader had no other holder: its connection is closed
    assert len(store._engine._open_readers) == 0
    store.state(conversation)
    assert len(store._engine._open_readers) == 1  # this thread's


def test_closing_the_log_closes_every_reader(tmp_path):
    store = ConversationStore(tmp_path / "log.db")
    conversation = store.start_conversation()
    store.state(conversation)
    connection = _thread_reader(store)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")

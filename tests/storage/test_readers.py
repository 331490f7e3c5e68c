"""The reads every message makes: one connection per thread, kept open, that sees each
commit at once and closes when its thread ends or the log is closed."""

import gc
import sqlite3
import threading

import pytest

from assistant.core.errors import UnknownConversation
from assistant.core.records import ConversationStatus
from assistant.storage.sqlite import ConversationStore
from tests.storage.test_sqlite import record


def test_a_thread_reuses_its_reader_and_sees_each_commit_at_once(store):
    conversation = store.start_conversation()
    assert store.state(conversation).pending_intent is None
    reader = store._thread_reader()
    store.log_turn(record(conversation, "where is my order", handoff_reason="asked"))
    assert store.status(conversation) is ConversationStatus.WAITING
    assert store._thread_reader() is reader
    with pytest.raises(UnknownConversation):
        store.state("no-such-conversation")


def test_a_thread_that_ends_drops_its_reader(store):
    conversation = store.start_conversation()
    worker = threading.Thread(target=store.state, args=(conversation,))
    worker.start()
    worker.join()
    gc.collect()  # the thread's reader had no other holder: its connection is closed
    assert len(store._open_readers) == 0
    store.state(conversation)
    assert len(store._open_readers) == 1  # this thread's


def test_closing_the_log_closes_every_reader(tmp_path):
    store = ConversationStore(tmp_path / "log.db")
    conversation = store.start_conversation()
    store.state(conversation)
    connection = store._thread_reader()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")

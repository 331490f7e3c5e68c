"""The log's one writer: changes queued from many threads are committed in groups, a
caller returns only after its change is committed, and a failing change undoes only
itself."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.storage.test_sqlite import record


def committed_turns(store) -> int:
    """Counted on a reader, not the writer: only what is committed is seen."""
    with store._engine.reading() as reader:
        return reader.one("SELECT COUNT(*) AS n FROM turns")["n"]


def test_turns_logged_from_many_threads_are_all_committed_in_fewer_commits(store):
    conversations = [store.start_conversation() for _ in range(8)]
    groups_before = store._writes.batches
    with ThreadPoolExecutor(16) as pool:
        ids = list(
            pool.map(lambda n: store.log_turn(record(conversations[n % 8], f"m{n}")), range(200))
        )
    assert len(set(ids)) == 200
    assert committed_turns(store) == 200
    assert store._writes.batches - groups_before < 200
    for conversation in conversations:
        positions = [turn["position"] for turn in store.turns(conversation)]
        assert positions == list(range(1, 26))


def test_a_change_that_fails_undoes_only_itself_and_its_group_is_committed(store):
    conversation = store.start_conversation()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(5)

    def half_then_fail() -> None:
        store._write_turn(record(conversation, "half written"))
        raise RuntimeError("broken change")

    with ThreadPoolExecutor(3) as pool:
        held = pool.submit(store._write, hold)
        assert holding.wait(5)
        failing = pool.submit(store._write, half_then_fail)
        good = pool.submit(store.log_turn, record(conversation, "kept"))
        while store._writes._jobs.qsize() < 2:
            threading.Event().wait(0.001)
        release.set()
        held.result()
        good_id = good.result()
        with pytest.raises(RuntimeError, match="broken change"):
            failing.result()
    assert store._writes.batches >= 2
    texts = [turn["user_text"] for turn in store.turns(conversation)]
    assert texts == ["kept"]
    assert store.turn(good_id)["user_text"] == "kept"


def test_a_caller_returns_only_once_its_turn_is_committed(store):
    conversation = store.start_conversation()
    for n in range(5):
        store.log_turn(record(conversation, f"turn {n}"))
        assert committed_turns(store) == n + 1

"""The staff pages' sign-ins in the log: sessions shared by every server on it, kept as
hashes, and failed attempts counted across servers, one server at a time."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.storage.contacts import KEY_FILE
from assistant.storage.store import ConversationStore

HOUR = 3600.0


@pytest.fixture
def two_servers(log_location, tmp_path):
    stores = [ConversationStore(log_location, contact_key=tmp_path / KEY_FILE) for _ in range(2)]
    yield stores
    for store in stores:
        store.close()


def test_a_session_is_seen_by_every_server_until_it_expires_or_ends(two_servers):
    first, second = two_servers
    first.open_session("token-1", "ana", "/agent", now=1000.0, lifetime=HOUR)
    assert second.session_user("token-1", "/agent", issued_after=1000.0 - HOUR) == "ana"
    assert second.session_user("token-1", "/admin", issued_after=0.0) is None  # its page only
    assert second.session_user("token-1", "/agent", issued_after=1000.0) is None  # expired
    assert second.anyone_signed_in("/agent", issued_after=0.0)
    second.end_sessions_of("ana")
    assert first.session_user("token-1", "/agent", issued_after=0.0) is None
    assert not first.anyone_signed_in("/agent", issued_after=0.0)


def test_only_a_hash_of_the_token_is_stored(two_servers):
    first, _ = two_servers
    first.open_session("secret-token", "ana", "/agent", now=1.0, lifetime=HOUR)
    with first._engine.reading() as reader:
        stored = reader.all("SELECT * FROM staff_sessions")
    assert "secret-token" not in repr(stored)
    assert len(stored) == 1 and len(stored[0]["token_hash"]) == 64


def test_a_burst_of_guesses_over_two_servers_counts_exactly_to_the_limit(two_servers):
    def guess(number: int) -> bool:
        store = two_servers[number % 2]
        return store.reserve_sign_in("ana", now=100.0, window=60.0, limit=3)

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(guess, range(40)))
    assert sum(admitted) == 3
    assert two_servers[0].sign_in_failures("ana", since=40.0) == (3, 100.0)
    two_servers[1].clear_sign_in_failures("ana")
    assert two_servers[0].sign_in_failures("ana", since=40.0) == (0, None)

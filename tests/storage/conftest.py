import pytest

from assistant.storage.contacts import KEY_FILE
from assistant.storage.store import ConversationStore


@pytest.fixture
def store(log_location, tmp_path):
    """An empty conversation log of the test's own, on each engine, closed afterwards."""
    opened = ConversationStore(log_location, contact_key=tmp_path / KEY_FILE)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path):
    """An empty SQLite log, for what only SQLite has (its file, its connections)."""
    opened = ConversationStore(tmp_path / "log.db")
    yield opened
    opened.close()

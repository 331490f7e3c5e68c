import pytest

from assistant.storage.contacts import KEY_FILE
from assistant.storage.store import ConversationStore


@pytest.fixture(params=["sqlite", "postgresql"])
def log_location(request, tmp_path):
    """Where the test's log lives: a SQLite file of its own, then a schema of its own on the
    test PostgreSQL server: every test that takes it runs on both engines."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_server").database_url()
    return tmp_path / "log.db"


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

import pytest

from assistant.storage.sqlite import ConversationStore


@pytest.fixture
def store(tmp_path):
    """An empty conversation log of the test's own, closed afterwards."""
    opened = ConversationStore(tmp_path / "log.db")
    yield opened
    opened.close()

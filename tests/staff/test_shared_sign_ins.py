"""Two servers on one log: a staff sign-in made on one is valid on the other, a sign-out on
either ends it on both, and failed sign-ins count across both."""

import pytest
from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.storage.contacts import KEY_FILE
from assistant.storage.store import ConversationStore
from tests.conftest import AGENT_NAME, AGENT_PASSWORD
from tests.staff.test_access import log_in


def server(staffed: Assistant, store: ConversationStore) -> TestClient:
    """A server of its own (its app, its store object) on the shared log."""
    replica = Assistant(
        staffed.settings,
        staffed.classifier,
        staffed.retriever,
        staffed.router.templates,
        store,
        None,
    )
    return TestClient(create_app(replica))


@pytest.fixture
def two_servers(staffed, log_location, tmp_path):
    stores = [ConversationStore(log_location, contact_key=tmp_path / KEY_FILE) for _ in range(2)]
    yield [server(staffed, store) for store in stores]
    for store in stores:
        store.close()


def test_a_sign_in_on_one_server_is_valid_on_the_other_until_signed_out_on_either(two_servers):
    first, second = two_servers
    with first, second:
        assert log_in(first, "/agent", AGENT_NAME, AGENT_PASSWORD).status_code == 200
        second.cookies.update(first.cookies)
        assert second.get("/agent/config").status_code == 200
        second.get("/agent/logout", follow_redirects=False)
        assert first.get("/agent/config").status_code == 401
        assert second.get("/agent/config").status_code == 401


def test_failed_sign_ins_count_across_servers(staffed, log_location, tmp_path):
    settings = staffed.settings.model_copy(update={"sign_in_attempts": 2})
    stores = [ConversationStore(log_location, contact_key=tmp_path / KEY_FILE) for _ in range(2)]
    limited = Assistant(
        settings, staffed.classifier, staffed.retriever, staffed.router.templates, stores[0]
    )
    first, second = server(limited, stores[0]), server(limited, stores[1])
    with first, second:
        assert log_in(first, "/agent", AGENT_NAME, "wrong password").status_code == 400
        assert log_in(second, "/agent", AGENT_NAME, "wrong again").status_code == 400
        blocked = log_in(first, "/agent", AGENT_NAME, AGENT_PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    for store in stores:
        store.close()

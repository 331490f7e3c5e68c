import json

from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from tests.conftest import with_settings

LIMIT = 2048


def _client(eager) -> TestClient:
    settings = eager.settings.model_copy(update={"max_request_bytes": LIMIT})
    return TestClient(create_app(with_settings(eager, settings), with_ui=False))


def test_a_body_declared_over_the_limit_is_refused_unread(eager):
    with _client(eager) as client:
        response = client.post("/api/chat", json={"message": "x" * (LIMIT * 2)})
    assert response.status_code == 413
    assert "over 2,048 bytes" in response.json()["error"]


def test_a_chunked_body_is_stopped_once_it_passes_the_limit(eager):
    body = json.dumps({"message": "x" * (LIMIT * 2)}).encode()
    chunks = (body[start : start + 512] for start in range(0, len(body), 512))
    with _client(eager) as client:
        response = client.post(
            "/api/chat", content=chunks, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert "over 2,048 bytes" in response.json()["error"]


def test_bodies_under_the_limit_are_served(eager):
    with _client(eager) as client:
        response = client.post("/api/chat", json={"message": "how much is shipping"})
    assert response.status_code == 200
    assert response.json()["reply"]

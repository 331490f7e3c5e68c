"""Bounded work per client: rates per conversation and address, no uploads, a body cap
everywhere, a cap on waiting chats."""

import pytest
from fastapi.testclient import TestClient

from assistant.channels.rate_limits import ChatSlots
from assistant.channels.web_chat import MESSAGE_EVENT_NAMES
from assistant.core.errors import ServerBusy
from tests.channels.staffed_fakes import fake_app

SLOW = {"rate_per_conversation": "3/minute", "rate_per_address": "10/minute"}


@pytest.fixture
def client(tmp_path):
    with TestClient(fake_app(tmp_path, **SLOW)) as test_client:
        yield test_client


def chat(client, conversation=None, **kwargs):
    return client.post(
        "/api/chat",
        json={"message": "how much is shipping", "conversation_id": conversation},
        **kwargs,
    )


def test_a_conversation_over_its_rate_gets_429_and_others_go_on(client):
    first = chat(client).json()["conversation_id"]  # a new one: counted by address only
    for _ in range(3):
        assert chat(client, first).status_code == 200
    refused = chat(client, first)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many messages" in refused.json()["error"]
    other = chat(client).json()["conversation_id"]  # same address, another conversation
    assert chat(client, other).status_code == 200


def test_an_address_over_its_rate_gets_429(client):
    statuses = [chat(client).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert chat(client).status_code == 429
    assert client.post("/api/feedback", json={"turn_id": 1, "rating": "up"}).status_code == 429


def test_direct_local_clients_are_exempt_but_not_through_a_proxy(tmp_path):
    app = fake_app(tmp_path, **SLOW)
    with TestClient(app, client=("127.0.0.1", 5000)) as local:
        assert all(chat(local).status_code == 200 for _ in range(15))
        proxied = [chat(local, headers={"X-Forwarded-For": "203.0.113.9"}) for _ in range(11)]
    assert proxied[-1].status_code == 429


def test_a_local_clients_conversation_is_still_counted(tmp_path):
    app = fake_app(tmp_path, **SLOW)
    with TestClient(app, client=("127.0.0.1", 5000)) as local:
        conversation = chat(local).json()["conversation_id"]
        statuses = [chat(local, conversation).status_code for _ in range(4)]
        other = chat(local).json()["conversation_id"]
        assert chat(local, other).status_code == 200
    assert statuses == [200, 200, 200, 429]


def test_a_trusted_proxy_counts_each_client_by_its_own_address(tmp_path):
    app = fake_app(tmp_path, trusted_proxies=["10.0.0.1"], rate_limit_exempt=[], **SLOW)
    with TestClient(app, client=("10.0.0.1", 5000)) as proxy:
        first = [chat(proxy, headers={"X-Forwarded-For": "203.0.113.9"}) for _ in range(11)]
        second = chat(proxy, headers={"X-Forwarded-For": "203.0.113.10"})
    assert first[-1].status_code == 429 and second.status_code == 200


def test_the_customer_page_takes_no_uploads_and_serves_no_files(client):
    upload = client.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 2_000_000)})
    assert upload.status_code in (403, 413)
    small = client.post("/gradio_api/upload", files={"files": ("a.txt", b"hello")})
    assert small.status_code == 403
    assert client.get("/gradio_api/file=/etc/hostname").status_code == 403
    assert client.get("/gradio_api/file/etc/hostname").status_code == 403
    video = client.post("/gradio_api/process_recording", files={"video": ("v.webm", b"x")})
    assert video.status_code == 403


def test_the_body_cap_covers_the_gradio_paths(tmp_path):
    app = fake_app(tmp_path, max_request_bytes=4096)
    with TestClient(app) as client:
        response = client.post("/gradio_api/queue/join", content=b"x" * 10_000)
    assert response.status_code == 413


def test_the_page_events_are_rate_limited_per_tab(tmp_path):
    app = fake_app(tmp_path, page_events_per_session="2/minute")
    with TestClient(app) as client:
        join = {"data": [], "fn_index": 0, "session_hash": "tab-1", "event_data": None}
        statuses = [client.post("/gradio_api/queue/join", json=join).status_code for _ in range(3)]
        other = client.post("/gradio_api/queue/join", json={**join, "session_hash": "tab-2"})
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert other.status_code != 429


def test_a_tabs_messages_count_like_a_conversations_even_from_this_machine(tmp_path):
    app = fake_app(tmp_path, rate_per_conversation="2/minute", page_events_per_session="2/minute")
    with TestClient(app, client=("127.0.0.1", 5000)) as client:  # exempt by address and tab
        events = {e["api_name"]: e["id"] for e in client.get("/config").json()["dependencies"]}
        join = {"data": [], "session_hash": "tab-1", "event_data": None}

        def send(event: str, session: str = "tab-1") -> int:
            body = {**join, "fn_index": events[event], "session_hash": session}
            return client.post("/gradio_api/queue/join", json=body).status_code

        messages = [send("respond"), send("respond_option"), send("talk_to_person")]
        other_tab = send("respond", "tab-2")
        tick = next(index for name, index in events.items() if name not in MESSAGE_EVENT_NAMES)
        ticks = [client.post("/gradio_api/queue/join", json={**join, "fn_index": tick})]
    assert 429 not in messages[:2] and messages[2] == 429
    assert other_tab != 429 and ticks[0].status_code != 429  # only messages, per tab


def test_gradios_call_api_counts_like_the_queue(tmp_path):
    app = fake_app(tmp_path, page_events_per_address="2/minute", rate_limit_exempt=[])
    with TestClient(app) as client:
        calls = [client.post("/gradio_api/call/partial", json={"data": []}) for _ in range(3)]
        cancel = client.post("/gradio_api/cancel", json={"session_hash": "t", "event_id": "e"})
    assert calls[2].status_code == 429 and cancel.status_code != 429


def test_a_body_nested_too_deep_is_counted_not_a_server_error(tmp_path):
    with TestClient(fake_app(tmp_path), raise_server_exceptions=False) as client:
        response = client.post("/gradio_api/queue/join", content=b"[" * 50_000)
    assert response.status_code < 500


def test_the_conversation_poll_is_rate_limited_per_address(tmp_path):
    app = fake_app(tmp_path, rate_per_address="2/minute", rate_limit_exempt=[])
    with TestClient(app) as client:
        statuses = [client.get("/api/conversations/nope/messages").status_code for _ in range(3)]
    assert statuses == [404, 404, 429]


def test_sign_ins_are_rate_limited_per_address(tmp_path, staff):
    app = fake_app(tmp_path, staff, sign_in_rate_per_address="2/minute")
    with TestClient(app) as client:
        form = {"username": "nobody", "password": "wrong password"}
        statuses = [client.post("/agent/login", data=form).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_more_waiting_chats_than_allowed_are_refused_at_once():
    slots = ChatSlots(1)
    slots.take()
    with pytest.raises(ServerBusy, match="busy; try again"):
        slots.take()
    slots.give_back()
    slots.take()


def test_a_busy_api_answers_503_with_retry_after(tmp_path):
    app = fake_app(tmp_path, max_waiting_chats=1)
    with TestClient(app) as client:
        app.state.chat_slots.take()  # one chat under way
        busy = chat(client)
        app.state.chat_slots.give_back()
        served = chat(client)
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    assert "busy" in busy.json()["error"]
    assert served.status_code == 200

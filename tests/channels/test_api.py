"""End to end: models trained on a demo slice, served over HTTP, turns found in SQLite."""

import json

import pytest
from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.records import RequestKey
from assistant.datasets.loading import load_dataset
from assistant.storage.store import ConversationStore
from tests.conftest import with_settings, writing_assistant
from tests.fakes import fake_settings
from tests.postgres import log_for_test


@pytest.fixture(scope="module")
def client(assistant):
    with TestClient(create_app(assistant)) as test_client:
        yield test_client


def test_known_question_is_answered_and_logged(client, assistant, built_settings):
    pair = next(
        p for p in load_dataset(built_settings.data_dir).qa_pairs if p.intent == "shipping_cost"
    )
    response = client.post("/api/chat", json={"message": pair.question})
    assert response.status_code == 200
    body = response.json()
    assert body["intent"] == "shipping_cost"
    assert body["route"] in {"template", "retrieval"}
    template = assistant.router.templates.get("shipping_cost").text
    assert body["reply"] in {template, pair.answer}
    assert 0.0 <= body["confidence"] <= 1.0

    row = assistant.store.turn(body["turn_id"])
    assert row["conversation_id"] == body["conversation_id"]
    assert row["user_text"] == pair.question
    assert row["reply_text"] == body["reply"]
    assert row["route"] == body["route"]
    assert row["intent"] == "shipping_cost"
    logged = json.loads(row["trace"])["sources"]
    if body["route"] == "template":  # a confident template reads no past question
        assert (body["trace"]["searched"], body["trace"]["sources"], logged) == (False, [], [])
    else:
        assert set(body["trace"]["sources"][0]) == {"intent", "score"}  # the public trace
        assert logged[0]["question"] == pair.question


def test_conversation_continues_with_its_id(client):
    first = client.post("/api/chat", json={"message": "hello"}).json()
    second = client.post(
        "/api/chat", json={"message": "thanks", "conversation_id": first["conversation_id"]}
    ).json()
    assert second["conversation_id"] == first["conversation_id"]


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"message": ""}, 422, "empty"),
        ({"message": " \n\t "}, 422, "empty"),
        ({"message": "a" * 20_000}, 422, "the limit is 1,000"),
        ({}, 422, "message: Field required"),
        ({"message": 42}, 422, "message"),
        ({"message": "hi", "conversation_id": "nope"}, 404, "Unknown conversation_id"),
    ],
)
def test_bad_requests_get_clear_errors(client, payload, status, fragment):
    response = client.post("/api/chat", json=payload)
    assert response.status_code == status
    assert fragment in response.json()["error"]


def test_feedback_endpoint(client, assistant):
    reply = client.post("/api/chat", json={"message": "hi"}).json()
    owner = reply["conversation_id"]
    rated = {"turn_id": reply["turn_id"], "conversation_id": owner, "rating": "up"}
    ok = client.post("/api/feedback", json=rated)
    assert ok.status_code == 200
    assert [f["rating"] for f in assistant.store.feedback(reply["turn_id"])] == [1]
    missing = client.post(
        "/api/feedback", json={"turn_id": 10**9, "conversation_id": owner, "rating": "down"}
    )
    assert missing.status_code == 404


def test_health_and_chat_page_are_served(client, assistant):
    assert client.get("/api/health").json() == {
        "status": "ok",
        "model_version": assistant.model_version,
        "writer": "ready",
    }
    page = client.get("/")
    assert page.status_code == 200
    assert "<html" in page.text.lower()


def test_without_accounts_the_staff_pages_say_how_to_add_one(client, assistant):
    assert assistant.settings.users == []
    for path in ("/agent", "/admin"):
        page = client.get(path)
        assert page.status_code == 404
        assert "assistant add-user NAME --role agent" in page.text


API_KEY = "pp_test-key-for-the-suggestions-api-0123456789"


@pytest.fixture(scope="module")
def keyed_client(eager):
    from assistant.core.settings import ApiKey
    from assistant.staff.accounts import hash_api_key

    settings = eager.settings.model_copy(
        update={"api_keys": [ApiKey(name="helpdesk", sha256=hash_api_key(API_KEY))]}
    )
    keyed = with_settings(eager, settings)
    with TestClient(create_app(keyed, with_ui=False)) as test_client:
        yield test_client


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "pp_wrong"}, {"X-API-Key": ""}])
def test_suggest_needs_an_api_key(keyed_client, headers):
    for body in ({"message": "where is my order"}, {"not": "valid"}):
        response = keyed_client.post("/api/suggest", json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "X-API-Key" in response.json()["error"]


def test_suggest_returns_three_ranked_suggestions(keyed_client):
    response = keyed_client.post(
        "/api/suggest",
        json={
            "message": "Where is my order? It has not arrived yet.",
            "history": [{"role": "customer", "text": "My order number is PP-204817"}],
        },
        headers={"X-API-Key": API_KEY},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"]
    suggestions = body["suggestions"]
    assert len(suggestions) == 3
    assert suggestions[0]["intent"] == "order_status"
    assert "PP-204817" in suggestions[0]["text"]
    for suggestion in suggestions:
        assert set(suggestion) == {"text", "route", "intent", "score", "sources", "trace"}
        assert suggestion["trace"]["intents"]
    bad = keyed_client.post("/api/suggest", json={"message": ""}, headers={"X-API-Key": API_KEY})
    assert bad.status_code == 422


def test_agent_replies_reach_the_customer_through_polling(keyed_client, eager):
    first = keyed_client.post("/api/chat", json={"message": "hello"}).json()
    conversation = first["conversation_id"]
    assert first["status"] in {"bot", "waiting"}
    eager.store.handoff(conversation, "test")
    url = f"/api/conversations/{conversation}/messages"
    seen = keyed_client.get(url).json()
    assert seen["status"] == "waiting"
    last = seen["messages"][-1]["id"]
    eager.store.agent_reply(conversation, "ana", "Hi, this is Ana.")
    new = keyed_client.get(url, params={"after": last}).json()
    assert [(m["author"], m["text"]) for m in new["messages"]] == [("agent", "Hi, this is Ana.")]
    assert new["status"] == "with_agent"
    reply = keyed_client.post(
        "/api/chat", json={"message": "thanks", "conversation_id": conversation}
    ).json()
    assert (reply["route"], reply["status"]) == ("agent", "with_agent")
    assert keyed_client.get("/api/conversations/nope/messages").status_code == 404


def test_metrics_in_prometheus_format(keyed_client):
    keyed_client.post("/api/chat", json={"message": "how much is shipping"})
    response = keyed_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'assistant_conversations{outcome="contained"}' in response.text
    assert "assistant_containment_ratio" in response.text
    assert 'assistant_reply_latency_ms{quantile="0.95"}' in response.text


def test_metrics_can_require_an_api_key_sent_either_way(eager):
    from assistant.core.settings import ApiKey
    from assistant.staff.accounts import hash_api_key

    settings = eager.settings.model_copy(
        update={
            "api_keys": [ApiKey(name="prometheus", sha256=hash_api_key(API_KEY))],
            "metrics_need_api_key": True,
        }
    )
    with TestClient(create_app(with_settings(eager, settings), with_ui=False)) as client:
        for headers in ({}, {"X-API-Key": "pp_wrong"}, {"Authorization": "Bearer pp_wrong"}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert "bearer token" in refused.json()["error"]
        for headers in ({"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}):
            assert client.get("/metrics", headers=headers).status_code == 200


def _server_sent_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_a_streamed_chat_sends_the_written_pieces_then_the_reply(assistant, built_settings):
    writer = writing_assistant(assistant, built_settings, -1.0, 1.01)
    with TestClient(create_app(writer, with_ui=False)) as client:
        payload = {"message": "How long does delivery take?", "stream": True}
        with client.stream("POST", "/api/chat", json=payload) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _server_sent_events("".join(response.iter_text()))
    *deltas, (kind, reply) = events
    assert kind == "reply" and deltas
    assert {kind for kind, _ in deltas} == {"delta"}
    written = "".join(data["text"] for _, data in deltas).strip()
    assert reply["turn_id"] > 0 and reply["route"] in {"generate", "handoff"}
    generation = reply["trace"]["generation"]
    if reply["route"] == "generate":  # the draft passed its check: it is the reply
        assert written == generation["written"] == reply["reply"]
    else:  # a draft that failed is not repeated in the reply's trace
        assert "written" not in generation and not generation["verdict"]["passed"]


def test_a_bad_streamed_request_gets_a_json_error_not_a_stream(client):
    response = client.post("/api/chat", json={"message": " ", "stream": True})
    assert response.status_code == 422
    assert "empty" in response.json()["error"]


# Without trained models: the API over the fakes in tests/fakes.py and a SQLite log.


@pytest.fixture
def served(demo_slice, tmp_path):
    settings = fake_settings(demo_slice)
    plain = Assistant.load(settings)
    store = ConversationStore(log_for_test(tmp_path / "log.db"))
    logged = Assistant(settings, plain.classifier, plain.retriever, plain.router.templates, store)
    with TestClient(create_app(logged)) as test_client:
        yield test_client, logged


def _no_past_words(trace):
    assert trace["sources"] and all(set(s) == {"intent", "score"} for s in trace["sources"])
    assert "Standard shipping is free" not in json.dumps(trace)


def test_a_chat_reply_carries_the_public_trace_and_the_log_the_full_one(served):
    client, logged = served
    body = client.post("/api/chat", json={"message": "How much is shipping?"}).json()
    assert body["trace"]["route"] == body["route"] and body["trace"]["reason"]
    assert body["trace"]["intents"] and body["trace"]["checks"]
    _no_past_words(body["trace"])
    logged_trace = json.loads(logged.store.turn(body["turn_id"])["trace"])
    assert logged_trace["sources"][0]["question"] == "How much is shipping?"


def test_the_streamed_reply_event_carries_the_public_trace(served):
    client, _ = served
    with client.stream("POST", "/api/chat", json={"message": "shipping?", "stream": True}) as r:
        text = "".join(r.iter_text())
    data = next(line for line in text.splitlines() if line.startswith("data:") and "trace" in line)
    _no_past_words(json.loads(data.removeprefix("data:"))["trace"])


def test_feedback_needs_the_turns_own_conversation(served):
    client, logged = served
    theirs = client.post("/api/chat", json={"message": "hi"}).json()
    mine = client.post("/api/chat", json={"message": "hello"}).json()
    probe = {"turn_id": theirs["turn_id"], "conversation_id": mine["conversation_id"]}
    other = client.post("/api/feedback", json={**probe, "rating": "down"})
    unknown = client.post("/api/feedback", json={**probe, "turn_id": 10**9, "rating": "down"})
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"].replace(str(theirs["turn_id"]), "N") == unknown.json()[
        "error"
    ].replace(str(10**9), "N")
    assert logged.store.feedback(theirs["turn_id"]) == []
    no_owner = client.post("/api/feedback", json={"turn_id": theirs["turn_id"], "rating": "up"})
    assert no_owner.status_code == 422


def test_a_rerating_replaces_the_rating(served):
    client, logged = served
    reply = client.post("/api/chat", json={"message": "hi"}).json()
    rated = {"turn_id": reply["turn_id"], "conversation_id": reply["conversation_id"]}
    for rating in ("up", "down", "up", "down"):
        assert client.post("/api/feedback", json={**rated, "rating": rating}).status_code == 200
    assert [f["rating"] for f in logged.store.feedback(reply["turn_id"])] == [-1]
    assert len(logged.store.feedback_history(reply["turn_id"])) == 4


def test_the_customer_page_keeps_no_run_history(served):
    client, _ = served
    assert client.get("/gradio_api/runs").status_code == 404


def _sent(client, key, **body):
    return client.post("/api/chat", json=body, headers={"Idempotency-Key": key})


def test_a_retry_with_the_same_idempotency_key_gets_the_reply_already_given(served):
    client, logged = served
    first = _sent(client, "retry-1", message="I want to track my order")
    again = _sent(client, "retry-1", message="I want to track my order")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()  # the same turn of the same, one, conversation
    conversation = first.json()["conversation_id"]
    assert len(logged.store.turns(conversation)) == 1
    later = _sent(client, "retry-2", message="It is PP-204817", conversation_id=conversation)
    assert later.json()["route"] == "template" and "PP-204817" in later.json()["reply"]
    with client.stream(
        "POST",
        "/api/chat",
        json={"message": "I want to track my order", "stream": True},
        headers={"Idempotency-Key": "retry-1"},
    ) as streamed:
        events = "".join(streamed.iter_text())
    [data] = [line for line in events.splitlines() if line.startswith("data:")]
    assert json.loads(data.removeprefix("data:"))["turn_id"] == first.json()["turn_id"]
    assert len(logged.store.turns(conversation)) == 2


def test_an_idempotency_key_sent_again_with_another_request_is_refused(served):
    client, logged = served
    first = _sent(client, "key-a", message="How much is shipping?").json()
    other_message = _sent(client, "key-a", message="I want a refund")
    other_conversation = _sent(
        client, "key-a", message="How much is shipping?", conversation_id=first["conversation_id"]
    )
    assert other_message.status_code == other_conversation.status_code == 422
    assert "Idempotency-Key" in other_message.json()["error"]
    assert len(logged.store.turns(first["conversation_id"])) == 1
    long_key = "k" * 2000  # only its hash is kept
    replies = [_sent(client, long_key, message="hi").json() for _ in range(2)]
    assert replies[0] == replies[1]
    empty = [_sent(client, "", message="hi").json()["turn_id"] for _ in range(2)]
    assert empty[0] != empty[1]  # an empty key is none: each is a message of its own


def test_a_retry_while_its_request_is_being_answered_is_told_to_wait(served):
    client, logged = served
    with logged._in_flight.claim(RequestKey.of("busy-1", None, "How much is shipping?")):
        busy = _sent(client, "busy-1", message="How much is shipping?")
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert _sent(client, "busy-1", message="How much is shipping?").status_code == 200

"""Quick replies under a clarifying question and the "Talk to a person" control, on the web
chat and the JSON API, over the fakes in tests/fakes.py (no model is trained).

With `KeywordClassifier`, a message naming two intents' words ("order" and "shipping") is
in the domain but ambiguous, so it gets a clarifying question offering both.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from gradio.helpers import special_args

from assistant.channels.page_polling import EXPIRED, STATUS_LINES
from assistant.channels.web_chat import (
    TALK_TO_PERSON,
    WHY_TITLE,
    build_ui,
    hand_off,
)
from assistant.core.conversation import PRESSED_FOR_PERSON
from assistant.core.pipeline import Assistant
from assistant.core.records import ConversationStatus
from tests.channels.staffed_fakes import fake_app
from tests.fakes import fake_settings

AMBIGUOUS = "my order and the shipping"
# How the demo templates name the two intents offered (`intent_names` in templates.json).
OFFERED = ["Tracking an order", "Delivery costs"]


@pytest.fixture
def assistant(demo_slice) -> Assistant:
    return Assistant.load(fake_settings(demo_slice))


# The web chat, driven as a browser drives it: an event's handler, then each `.then` after.


class Page:
    """The page's components' values, and the events a customer's clicks start."""

    def __init__(self, demo: gr.Blocks) -> None:
        self.demo = demo
        self.values: dict[int, Any] = {
            block_id: getattr(block, "value", None) for block_id, block in demo.blocks.items()
        }
        self.timer_active: bool | None = None

    def component(self, kind: type, **attributes: Any) -> Any:
        return next(
            block
            for block in self.demo.blocks.values()
            if isinstance(block, kind)
            and all(getattr(block, name, None) == value for name, value in attributes.items())
        )

    def value(self, component: Any) -> Any:
        return self.values[component._id]

    def fire(self, component: Any, event: str, data: Any = None) -> list[str]:
        """Run the handlers of `event` on `component` in order; returns their names."""
        functions = list(self.demo.fns.values())
        chain = [next(f for f in functions if (component._id, event) in f.targets)]
        while follow := [f for f in functions if f.trigger_after == chain[-1]._id]:
            (step,) = follow
            chain.append(step)
        for step in chain:
            arguments = [self.values[block._id] for block in step.inputs]
            # The event's data goes where the handler's annotation asks, as Gradio puts it.
            arguments = special_args(step.fn, arguments, event_data=data)[0]
            result = step.fn(*arguments)
            if inspect.isgenerator(result):
                result = list(result)[-1]
            if not step.outputs:
                continue
            results = result if len(step.outputs) > 1 else (result,)
            for block, value in zip(step.outputs, results, strict=True):
                if isinstance(block, gr.Timer):  # an update starts or stops it
                    if isinstance(value, dict):
                        self.timer_active = value["active"]
                elif value != gr.skip():
                    self.values[block._id] = value
        return [getattr(step.fn, "func", step.fn).__name__ for step in chain]


@pytest.fixture
def page(assistant) -> Page:
    return Page(build_ui(assistant))


def chat_of(page: Page) -> list[dict[str, Any]]:
    return page.value(page.component(gr.Chatbot))


def state_given_to_respond(page: Page, position: int) -> Any:
    """The value of the state the page's `respond` event takes at `position`."""
    respond = next(f for f in page.demo.fns.values() if f.api_name == "respond")
    return page.value(respond.inputs[position])


def conversation_of(page: Page) -> str | None:
    """The page's conversation id, or none yet."""
    return state_given_to_respond(page, 2)


def turn_ids_of(page: Page) -> dict[int, int]:
    return state_given_to_respond(page, 3)


def type_and_send(page: Page, text: str) -> list[str]:
    page.values[page.component(gr.Textbox)._id] = text
    return page.fire(page.component(gr.Textbox), "submit")


def test_a_clarifying_question_shows_its_options_as_quick_replies(page, assistant):
    type_and_send(page, AMBIGUOUS)
    history = chat_of(page)
    reply, fold = history[-2:]
    turn = assistant.store.records[-1][1]
    assert turn.route == "clarify" and turn.trace["options"] == OFFERED
    assert reply["content"] == turn.reply_text and all(o in reply["content"] for o in OFFERED)
    # The chat shows its last message's options as buttons: here the reply's fold.
    assert fold["metadata"]["title"] == WHY_TITLE
    assert fold["options"] == [{"value": option} for option in OFFERED]


def test_choosing_a_quick_reply_sends_it_as_the_customers_message(page, assistant):
    typed = type_and_send(page, AMBIGUOUS)
    conversation = conversation_of(page)
    data = gr.SelectData(page.component(gr.Chatbot), {"index": 0, "value": OFFERED[0]})
    chosen = page.fire(page.component(gr.Chatbot), "option_select", data)
    # One event each, answering as a typed message is answered.
    assert (typed, chosen) == (["send_message"], ["send_option"])
    turns = assistant.store.turns(conversation)
    assert [t["user_text"] for t in turns] == [AMBIGUOUS, OFFERED[0]]
    record = assistant.store.records[-1][1]
    assert (record.route, record.intent) == ("template", "order_status")
    history = chat_of(page)
    assert history[-3] == {"role": "user", "content": OFFERED[0]}
    assert history[-2]["content"] == turns[-1]["reply_text"]
    assert "options" not in history[-1]  # answered: no quick replies left to offer
    assert page.value(page.component(gr.Textbox)) == ""  # the box is cleared, as after typing
    assert page.timer_active  # polling goes on after the reply


def test_a_reply_without_options_offers_no_quick_replies(page, assistant):
    type_and_send(page, "how much is shipping")
    assert assistant.store.records[-1][1].route != "clarify"
    assert all("options" not in message for message in chat_of(page))


def test_the_talk_to_a_person_button_hands_the_conversation_off(page, assistant):
    type_and_send(page, "how much is shipping")
    conversation = conversation_of(page)
    before = len(chat_of(page))
    page.fire(page.component(gr.Button, value=TALK_TO_PERSON), "click")
    assert conversation_of(page) == conversation
    assert assistant.store.status(conversation) is ConversationStatus.WAITING
    turn = assistant.store.records[-1][1]
    assert (turn.route, turn.user_text) == ("handoff", PRESSED_FOR_PERSON)
    history = chat_of(page)
    assert len(history) == before + 3
    assert history[-3] == {"role": "user", "content": TALK_TO_PERSON}
    assert history[-2]["content"] == turn.reply_text
    assert "**Route:** `handoff`" in history[-1]["content"]
    # The status line says people have it, and the page polls for their reply.
    assert (
        page.value(page.component(gr.Markdown, elem_id="status"))
        == STATUS_LINES[ConversationStatus.WAITING]
    )
    assert page.timer_active
    # Pressed again: a person has it already, which is said and logged, not a second handoff.
    page.fire(page.component(gr.Button, value=TALK_TO_PERSON), "click")
    assert assistant.store.records[-1][1].route == "agent"
    assert chat_of(page)[-2]["content"] == assistant.store.records[-1][1].reply_text


def test_the_button_starts_a_conversation_when_there_is_none(page, assistant):
    page.fire(page.component(gr.Button, value=TALK_TO_PERSON), "click")
    conversation = conversation_of(page)
    assert conversation is not None
    assert assistant.store.status(conversation) is ConversationStatus.WAITING
    assert [t["route"] for t in assistant.store.turns(conversation)] == ["handoff"]


def test_the_button_on_an_expired_conversation_warns_and_starts_over(assistant):
    history = [{"role": "user", "content": "earlier"}]
    with pytest.warns(UserWarning, match=EXPIRED):
        assert hand_off(assistant, history, "no-such-conversation", {1: 1}) == ([], None, {})
    assert assistant.store.records == []  # nothing was logged for the unknown conversation


def test_a_handoff_reply_can_be_rated(page, assistant):
    page.fire(page.component(gr.Button, value=TALK_TO_PERSON), "click")
    (turn,) = assistant.store.turns(conversation_of(page))
    assert turn_ids_of(page) == {1: turn["id"], 2: turn["id"]}  # the reply and its fold
    like = gr.LikeData(None, {"index": 1, "value": "...", "liked": True})
    page.fire(page.component(gr.Chatbot), "like", like)
    assert assistant.store.ratings == {turn["id"]: [1]}


# The JSON API.


@pytest.fixture
def served(tmp_path):
    app = fake_app(tmp_path, rate_per_conversation="3/minute", rate_per_address="20/minute")
    with TestClient(app) as client:
        yield client, app.state.assistant


def test_chat_replies_carry_their_quick_replies(served):
    client, _ = served
    body = client.post("/api/chat", json={"message": AMBIGUOUS}).json()
    assert body["route"] == "clarify"
    assert body["options"] == body["trace"]["options"] == OFFERED
    plain = client.post("/api/chat", json={"message": "how much is shipping"}).json()
    assert plain["route"] != "clarify" and plain["options"] == []


def test_a_streamed_reply_carries_its_quick_replies(served):
    client, _ = served
    with client.stream("POST", "/api/chat", json={"message": AMBIGUOUS, "stream": True}) as r:
        text = "".join(r.iter_text())
    assert '"options": ["Tracking an order", "Delivery costs"]' in text


def test_handoff_starts_a_conversation_with_the_support_team(served):
    client, assistant = served
    for body in ({}, {"conversation_id": None}):
        response = client.post("/api/handoff", json=body)
        assert response.status_code == 200
        reply = response.json()
        assert (reply["route"], reply["status"], reply["options"]) == ("handoff", "waiting", [])
        conversation = reply["conversation_id"]
        assert assistant.store.status(conversation) is ConversationStatus.WAITING
        assert [t["user_text"] for t in assistant.store.turns(conversation)] == [PRESSED_FOR_PERSON]
        assert reply["trace"]["handoff"] == "asked_for_person"
        assert reply["trace"]["sources"] == []


def test_handoff_hands_off_an_ongoing_conversation_once(served):
    client, assistant = served
    first = client.post("/api/chat", json={"message": "how much is shipping"}).json()
    conversation = first["conversation_id"]
    assert first["status"] == "bot"
    handed = client.post("/api/handoff", json={"conversation_id": conversation}).json()
    assert (handed["route"], handed["status"]) == ("handoff", "waiting")
    assert handed["conversation_id"] == conversation
    again = client.post("/api/handoff", json={"conversation_id": conversation}).json()
    assert (again["route"], again["status"]) == ("agent", "waiting")
    routes = [t["route"] for t in assistant.store.turns(conversation)]
    assert routes == [first["route"], "handoff", "agent"]


def test_handoff_of_an_unknown_conversation_is_the_chats_404(served):
    client, _ = served
    refused = client.post("/api/handoff", json={"conversation_id": "nope"})
    chat = client.post("/api/chat", json={"message": "hi", "conversation_id": "nope"})
    assert refused.status_code == chat.status_code == 404
    assert refused.json() == chat.json()


@pytest.mark.parametrize("body", [{"conversation_id": 42}, {"conversation_id": "x" * 65}, []])
def test_a_bad_handoff_request_gets_a_clear_422(served, body):
    client, _ = served
    response = client.post("/api/handoff", json=body)
    assert response.status_code == 422
    assert set(response.json()) == {"error"}


def test_handoffs_are_counted_with_the_conversations_messages(served):
    client, _ = served
    conversation = client.post("/api/chat", json={"message": "hi"}).json()["conversation_id"]
    sent = [
        client.post("/api/chat", json={"message": "hello", "conversation_id": conversation}),
        client.post("/api/handoff", json={"conversation_id": conversation}),
        client.post("/api/handoff", json={"conversation_id": conversation}),
    ]
    assert [r.status_code for r in sent] == [200, 200, 200]
    refused = client.post("/api/handoff", json={"conversation_id": conversation})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    also = client.post("/api/chat", json={"message": "hi", "conversation_id": conversation})
    assert also.status_code == 429


def test_handoff_takes_cross_origin_calls_only_from_allowed_origins(tmp_path):
    shop, evil = "https://shop.example", "https://evil.example"
    with TestClient(fake_app(tmp_path, allowed_origins=[shop])) as client:
        for origin, allowed in ((shop, True), (evil, False)):
            preflight = client.options(
                "/api/handoff",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            assert ("access-control-allow-origin" in preflight.headers) is allowed, origin

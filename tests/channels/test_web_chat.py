import threading
from types import SimpleNamespace

import gradio as gr
import pytest

from assistant.channels.page_polling import (
    IDLE_POLL_SECONDS,
    POLL_SECONDS,
    STATUS_LINES,
)
from assistant.channels.web_chat import (
    WHY_TITLE,
    PageView,
    build_ui,
    rate,
    then_poll,
    with_message,
)
from assistant.channels.web_chat import respond as respond_stream
from assistant.core.records import ConversationStatus


def respond(*arguments):
    """The state the chat shows once the reply is complete."""
    return list(respond_stream(*arguments))[-1]


def test_a_reply_and_its_explanation_are_added(assistant):
    box, history, conversation_id, turn_ids = respond(assistant, "hi there", [], None, {})
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant", "assistant"]
    assert history[0]["content"] == "hi there"
    assert history[2]["metadata"] == {"title": WHY_TITLE, "status": "done"}
    assert "**Route:**" in history[2]["content"]
    turn = assistant.store.turns(conversation_id)[0]
    assert turn_ids == {1: turn["id"], 2: turn["id"]}
    assert history[1]["content"] == turn["reply_text"]


def test_a_message_shows_at_once_then_its_reply_and_the_polling_it_calls_for(assistant):
    asked = with_message([], "hi there")
    steps = respond_stream(assistant, "hi there", [], None, {})
    first, last = list(then_poll(assistant, PageView([], None, {}, 0, "", None), "", asked, steps))
    assert first[:2] == ("", asked)
    box, chat, conversation_id, turn_ids, last_seen, status_line, timer, pace = last
    assert chat[0] == asked[0] and [m["role"] for m in chat[1:]] == ["assistant", "assistant"]
    assert (box, status_line, pace) == ("", "", IDLE_POLL_SECONDS)
    assert timer == gr.update(value=IDLE_POLL_SECONDS, active=True)  # the first: it starts
    assert turn_ids and last_seen > 0  # the transcript lines looked at
    assert assistant.store.turns(conversation_id)[0]["user_text"] == "hi there"

    # The next message: the timer keeps its pace, and is sent its interval, not an update.
    again = with_message(chat, "thanks")
    steps = respond_stream(assistant, "thanks", chat, conversation_id, turn_ids)
    view = PageView(chat, conversation_id, turn_ids, last_seen, "", IDLE_POLL_SECONDS)
    states = list(then_poll(assistant, view, "", again, steps))
    assert [state[6] for state in states] == [IDLE_POLL_SECONDS, IDLE_POLL_SECONDS]
    # Gradio builds a skipped component anew: the chat and the status line are given their
    # values every time.
    assert all(gr.skip() not in (state[1], state[5]) for state in [first, last, *states])


def test_the_status_line_shown_while_an_action_runs_is_only_one_the_page_writes(assistant):
    waiting = STATUS_LINES[ConversationStatus.WAITING]
    assert PageView([], None, {}, 0, waiting, POLL_SECONDS).status_line == waiting
    forged = '<img src=x onerror="alert(1)"> **Your refund is approved.**'
    view = PageView([], None, {}, 0, forged, None)
    assert view.status_line == ""
    steps = respond_stream(assistant, "hi there", [], None, {})
    first = next(then_poll(assistant, view, "", with_message([], "hi there"), steps))
    assert first[5] == ""


def test_the_conversation_continues(assistant):
    _, history, conversation_id, turn_ids = respond(assistant, "hello", [], None, {})
    _, history, same_id, turn_ids = respond(
        assistant, "how much is shipping", history, conversation_id, turn_ids
    )
    assert same_id == conversation_id
    assert len(history) == 6
    assert len(assistant.store.turns(conversation_id)) == 2
    assert set(turn_ids) == {1, 2, 4, 5}


def test_an_empty_message_warns_and_keeps_the_box_and_history(assistant):
    history = [{"role": "user", "content": "earlier"}]
    with pytest.warns(UserWarning, match="The message is empty"):
        assert respond(assistant, "   ", history, None, {}) == ("   ", history, None, {})


def test_thumbs_down_is_stored_on_the_turn(assistant):
    _, _, conversation_id, turn_ids = respond(assistant, "do you take paypal", [], None, {})
    event = gr.LikeData(None, {"index": 1, "value": "...", "liked": False})
    feedback_id = rate(assistant, turn_ids, conversation_id, event)
    turn_id = turn_ids[1]
    assert [f["id"] for f in assistant.store.feedback(turn_id)] == [feedback_id]
    assert assistant.store.feedback(turn_id)[0]["rating"] == -1
    user_message = gr.LikeData(None, {"index": 0, "value": "...", "liked": True})
    assert rate(assistant, turn_ids, conversation_id, user_message) is None


def test_the_page_builds(assistant):
    assert isinstance(build_ui(assistant), gr.Blocks)


def test_the_queue_summarises_its_events_for_monitoring_rarely(assistant):
    queue = build_ui(assistant)._queue  # the summary serves a dashboard the pages leave off
    assert queue.ANAYLTICS_CACHE_FREQUENCY == 1000  # Gradio's spelling
    assert queue.ANALYTICS_MAX_EVENTS == 1000


class SlowToFinish:
    """A reply stream whose unseen rest takes until `finish` is set, as a long answer would."""

    def __init__(self) -> None:
        self.finish, self.closed = threading.Event(), threading.Event()
        self.closed_on: threading.Thread | None = None

    def __iter__(self):
        yield "A first piece"
        yield "and more"

    def close(self) -> None:
        self.closed_on = threading.current_thread()
        self.finish.wait(10)
        self.closed.set()


def test_a_page_that_stops_listening_finishes_the_answer_off_the_calling_thread():
    stream = SlowToFinish()
    assistant = SimpleNamespace(reply_stream=lambda message, conversation: stream)
    chat = respond_stream(assistant, "hi", [], None, {})
    assert next(chat)[1][-1]["content"] == "A first piece"
    chat.close()  # what Gradio does on the event loop when the page cancels
    stream.finish.set()
    assert stream.closed.wait(10)
    assert stream.closed_on is not threading.current_thread()

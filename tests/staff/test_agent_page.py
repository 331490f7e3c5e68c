import gradio as gr
import pytest

from assistant.staff.agent_actions import send_reply
from assistant.staff.agent_page import build_agent_ui
from assistant.staff.agent_views import load_queue, open_conversation, refresh
from tests.staff.conftest import AS_AGENT


def test_a_conversation_that_no_longer_exists_is_refused(staffed):
    gone = {"id": "no-such-conversation", "status": "waiting", "last_line": 0}
    with pytest.raises(gr.Error, match="no longer exists"):
        open_conversation(staffed, gone["id"], AS_AGENT)
    with pytest.raises(gr.Error, match="no longer exists"):
        send_reply(staffed, gone, "hello", None, AS_AGENT)
    assert refresh(staffed, gone, AS_AGENT)[1] == (
        "This conversation no longer exists; refresh the queue."
    )


def test_only_signed_in_staff_may_use_the_page(staffed, handed_off):
    nobody = gr.Request(username=None)
    with pytest.raises(gr.Error, match="not signed in"):
        load_queue(staffed, nobody)
    with pytest.raises(gr.Error, match="not signed in"):
        open_conversation(staffed, handed_off, nobody)
    with pytest.raises(gr.Error, match="no longer configured"):
        send_reply(staffed, None, "hi", None, gr.Request(username="mallory"))


def test_the_page_builds(staffed):
    assert isinstance(build_agent_ui(staffed), gr.Blocks)

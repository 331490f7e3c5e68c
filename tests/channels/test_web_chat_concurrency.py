"""The chat page serves several customers at once: a reply being written for one does
not hold up another's (Gradio's default would run one event at a time)."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client

from assistant.channels.web_chat import build_ui, chat_concurrency
from assistant.core.pipeline import Assistant
from tests.fakes import fake_settings

CUSTOMERS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_customers_on_the_page_are_answered_at_the_same_time(demo_slice):
    assistant = Assistant.load(fake_settings(demo_slice))
    together = threading.Barrier(CUSTOMERS, timeout=20)
    answer = assistant.reply_stream

    def reply_once_all_are_in(message, conversation_id=None):
        together.wait()  # breaks (and the replies fail) unless every customer is in at once
        return answer(message, conversation_id)

    assistant.reply_stream = reply_once_all_are_in
    demo = build_ui(assistant)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:

        def customer(message: str) -> list[dict]:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            # The box, the chat, the status line and the poll timer (the session's state
            # stays on the server).
            _, history, _, _ = client.predict(message, [], api_name="/respond")
            return history

        messages = ["where is my order", "I want a refund", "hello"]
        with ThreadPoolExecutor(CUSTOMERS) as pool:
            replies = list(pool.map(customer, messages))
    finally:
        demo.close()
    assert not together.broken
    for history in replies:
        assert [line["role"] for line in history[:2]] == ["user", "assistant"]
        assert history[1]["content"]


def test_the_page_handles_as_many_events_as_the_api_admits(demo_slice):
    settings = fake_settings(demo_slice)
    assert chat_concurrency(settings.serving) == settings.serving.max_waiting_chats
    sized = settings.model_copy(update={"chat_concurrency": 5})
    assert chat_concurrency(sized.serving) == 5

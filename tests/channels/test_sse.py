"""A streaming client that hangs up never blocks other requests."""

import http.client
import json
import threading
from urllib.parse import urlsplit

import httpx

from assistant.core.pipeline import Assistant
from assistant.core.stream import ReplyStream
from tests.channels.staffed_fakes import fake_app
from tests.conftest import running_server

HANGUPS = 3


class SlowWriter:
    """Reply streams whose rest, once the reader leaves, waits for `release`."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished: list[int] = []
        self.started = threading.Semaphore(0)

    def reply_stream(
        self, message: object, conversation_id: str | None = None, request: object = None
    ) -> ReplyStream:
        return ReplyStream(self._events())

    def _events(self):
        yield "The first piece. "
        try:
            while True:
                yield "more "
        except GeneratorExit:  # the reader left: finish the answer unseen, slowly
            self.started.release()
            self.release.wait(timeout=60)
            self.finished.append(1)


def hang_up_mid_answer(url: str) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    body = json.dumps({"message": "hello", "stream": True})
    connection.request("POST", "/api/chat", body, {"content-type": "application/json"})
    response = connection.getresponse()
    assert b"delta" in response.readline()
    connection.sock.close()  # gone mid-answer
    connection.close()


def test_health_is_answered_while_abandoned_answers_finish(tmp_path, monkeypatch):
    writer = SlowWriter()
    app = fake_app(tmp_path)
    assistant: Assistant = app.state.assistant
    monkeypatch.setattr(assistant, "reply_stream", writer.reply_stream)
    with running_server(app) as url:
        try:
            for _ in range(HANGUPS):
                hang_up_mid_answer(url)
            for _ in range(HANGUPS):  # every abandoned answer is being finished now
                assert writer.started.acquire(timeout=30)
            health = httpx.get(f"{url}/api/health", timeout=20)
            still_writing = not writer.finished
        finally:
            writer.release.set()
    assert health.status_code == 200
    assert still_writing  # health was answered before any abandoned answer was done

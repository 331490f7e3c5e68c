import threading

import pytest

from assistant.core.errors import RequestAnswered, RequestInFlight, RequestKeyReused
from assistant.core.records import RequestKey
from assistant.core.retries import RequestsInFlight, answer_once
from assistant.core.stream import ReplyStream
from assistant.core.types import Reply

KEY = RequestKey.of("key-1", None, "where is my order")
LOGGED = Reply("It ships today.", "template", "order_status", 0.9, "c1", 7, {}, 3.0, "v1")


class Log:
    """Holds the replies logged by idempotency key, as the conversation log does."""

    def __init__(self) -> None:
        self.replies: dict[str, tuple[str, Reply]] = {}

    def answered(self, request):
        logged = self.replies.get(request.key_hash)
        if logged is None:
            return None
        request.require_request(logged[0])
        return logged[1]


def test_a_key_stands_for_its_conversation_and_message():
    assert RequestKey.of("key-1", None, "where is my order") == KEY
    assert RequestKey.of("key-1", None, "where is my parcel").key_hash == KEY.key_hash
    assert RequestKey.of("key-1", None, "where is my parcel") != KEY
    assert RequestKey.of("key-1", "c1", "where is my order") != KEY
    assert "key-1" not in KEY.key_hash + KEY.request_digest


def test_an_answered_request_gets_its_logged_reply_without_answering_again():
    log, answered = Log(), []

    def answer():
        answered.append(1)
        yield LOGGED

    first = ReplyStream(answer_once(KEY, RequestsInFlight(), log, answer)).final()
    log.replies[KEY.key_hash] = (KEY.request_digest, first)
    again = ReplyStream(answer_once(KEY, RequestsInFlight(), log, answer)).final()
    assert again == first and answered == [1]
    with pytest.raises(RequestKeyReused):
        other = RequestKey.of("key-1", None, "I want a refund")
        ReplyStream(answer_once(other, RequestsInFlight(), log, answer))


def test_a_request_being_answered_refuses_its_retry_until_it_is_done():
    in_flight, release, started = RequestsInFlight(), threading.Event(), threading.Event()

    def slow_answer():
        started.set()
        release.wait(5)
        yield LOGGED

    worker = threading.Thread(
        target=lambda: ReplyStream(answer_once(KEY, in_flight, Log(), slow_answer)).final()
    )
    worker.start()
    assert started.wait(5)
    with pytest.raises(RequestInFlight):
        ReplyStream(answer_once(KEY, in_flight, Log(), slow_answer))
    other = RequestKey.of("key-2", None, "where is my order")
    assert ReplyStream(answer_once(other, in_flight, Log(), lambda: iter([LOGGED]))).final()
    release.set()
    worker.join(5)
    assert ReplyStream(answer_once(KEY, in_flight, Log(), lambda: iter([LOGGED]))).final()


def test_a_request_another_server_logged_meanwhile_ends_with_that_reply():
    log = Log()

    def answer_logged_elsewhere_first():
        yield "A written "
        log.replies[KEY.key_hash] = (KEY.request_digest, LOGGED)  # the other server's turn
        raise RequestAnswered("logged already")

    answered = answer_once(KEY, RequestsInFlight(), log, answer_logged_elsewhere_first)
    events = list(ReplyStream(answered))
    assert events == ["A written ", LOGGED]
    with pytest.raises(RequestAnswered):  # and with nothing logged, the error stands

        def nothing_logged():
            raise RequestAnswered("logged already")
            yield

        list(ReplyStream(answer_once(KEY, RequestsInFlight(), Log(), nothing_logged)))

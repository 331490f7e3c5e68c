"""Idempotent retries: a client that resends a request gets the reply it was given.

A client that timed out, or lost its connection, cannot tell whether its message was
answered. With an idempotency key (the API's `Idempotency-Key` header) it may send the
message again: a request already answered gets the turn the log holds, and nothing is
logged again; one still being answered on this server is refused for a moment
(`RequestInFlight`), so that the same message is never answered twice at once; and a key
sent with another message or conversation is refused (`RequestKeyReused`).

Servers that share one log see each other's answered requests. A retry that reaches
another server while its first try is still being answered there is answered again, but
only one of the two turns is logged (the log holds one turn a key): the one logged second
is dropped, and its caller gets the first one's reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

from assistant.core.errors import RequestAnswered, RequestInFlight
from assistant.core.records import RequestKey
from assistant.core.seams import TurnLog
from assistant.core.types import ReplyEvent


class RequestsInFlight:
    """The idempotency keys of the requests this server is answering now."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def claim(self, request: RequestKey) -> Iterator[None]:
        with self._lock:
            if request.key_hash in self._keys:
                raise RequestInFlight("a request with this Idempotency-Key is being answered")
            self._keys.add(request.key_hash)
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard(request.key_hash)


def answer_once(
    request: RequestKey,
    in_flight: RequestsInFlight,
    log: TurnLog,
    answer: Callable[[], Generator[ReplyEvent, None, None]],
) -> Generator[ReplyEvent, None, None]:
    """The events of `answer()`, unless the log already holds this request's reply: then
    that reply alone. If another server logs it while `answer()` runs, its reply ends
    the events instead."""
    with in_flight.claim(request):
        answered = log.answered(request)
        if answered is not None:
            yield answered
            return
        try:
            yield from answer()
        except RequestAnswered:  # another server logged this request's turn meanwhile
            answered = log.answered(request)
            if answered is None:
                raise
            yield answered

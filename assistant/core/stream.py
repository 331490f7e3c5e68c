"""One reply as a stream of events, the one shape every channel consumes.

A reply is zero or more text pieces (`str`) of an answer being written, then one
final `Reply`, which holds the text that stands (a written answer that fails its
checks is replaced there). Opening the stream runs the message up to its first
event, so bad input (`MessageError`, `UnknownConversation`) is raised before a
channel has sent anything, and a channel needs no priming logic of its own.
"""

from __future__ import annotations

from collections.abc import Generator

from assistant.core.types import Reply, ReplyEvent


class ReplyStream:
    """An iterator over one reply's events; `close()` when the reader leaves early."""

    def __init__(self, events: Generator[ReplyEvent, None, None]) -> None:
        self._events = events
        self._opened: list[ReplyEvent] = [next(events)]

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> ReplyEvent:
        if self._opened:
            return self._opened.pop()
        return next(self._events)

    def close(self) -> None:
        """Stop reading. The answer is still finished unseen and its turn logged."""
        self._opened.clear()
        self._events.close()

    def final(self) -> Reply:
        """Read to the end and return the reply that stands."""
        for event in self:
            if isinstance(event, Reply):
                return event
        raise AssertionError("a reply stream ended without its reply")

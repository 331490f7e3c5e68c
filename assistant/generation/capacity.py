"""How many answers are written at once, and how many may wait.

A written answer takes a hundred times longer than a template reply. Each is written in
its own worker at a lower CPU priority (see `writer.py`), at most `workers` at once;
up to `waiting` more wait their turn, and beyond that a message gets the fallback its
decision carries, so a crowd that wants written answers never piles up without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_REASON = "the answer writer is busy"


class WritingCapacity:
    def __init__(self, workers: int = 1, waiting: int = 8) -> None:
        if workers < 1 or waiting < 0:
            raise ValueError("need at least one worker and no negative queue")
        self._writing = threading.BoundedSemaphore(workers)
        self._admitted = threading.BoundedSemaphore(workers + waiting)

    @contextmanager
    def turn(self) -> Iterator[bool]:
        """True once it is this caller's turn to write (after waiting for it); False at once
        when the workers and the waiting places are all taken."""
        if not self._admitted.acquire(blocking=False):
            yield False
            return
        try:
            with self._writing:
                yield True
        finally:
            self._admitted.release()

"""What runs beside the app while it serves: the answer writer loading after start-up, work
a page's first event would otherwise do on the event loop, and the watch for newly
promoted models.

The writer can be what a start waits for longest (on PyTorch, GPT-2 and the modules it
imports take seconds; its ONNX form a fraction of one), and most replies never need it,
so the server answers as soon as the encoders are ready and adds the writer in the
background; `/api/health` says where it is. Until it is in service,
each message takes the route it would take with writing off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import anyio.to_thread
from fastapi import FastAPI

from assistant.channels.web_chat import chat_concurrency
from assistant.core.errors import AssistantError
from assistant.core.pipeline import Assistant
from assistant.lifecycle.hot_reload import ModelWatcher

log = logging.getLogger(__name__)

WriterState = Literal["off", "loading", "ready", "failed"]


class WriterLoading:
    """Adds the configured answer writer to `assistant` in a thread of its own."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> WriterState:
        if self.assistant.generator is not None:
            return "ready"
        if self.error:
            return "failed"
        return "loading" if self.assistant.writer_pending else "off"

    def start(self) -> None:
        """Start loading, unless the writer is in service (or off) already."""
        if self.state == "loading" and self._thread is None:
            self._thread = threading.Thread(target=self._load, name="writer-loading", daemon=True)
            self._thread.start()

    def wait(self, timeout_s: float | None = None) -> WriterState:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.state

    def _load(self) -> None:
        try:
            self.assistant.add_writer()
        except AssistantError as error:  # what a missing or broken model raises
            self.error = str(error)
            log.error("serving without the answer writer: %s", error)
        except Exception as error:
            # Anything else too: the server keeps answering with templates, past answers
            # and handoffs, and says why in its log and on /api/health.
            self.error = f"{type(error).__name__}: {error}"
            log.exception("serving without the answer writer")


def server_threads(serving: Any) -> int:
    """Threads for requests: every API chat admitted, every chat-page event, and a margin
    for polls, feedback and the staff pages."""
    return serving.max_waiting_chats + chat_concurrency(serving) + 16


def serving_lifespan(
    assistant: Assistant, writer: WriterLoading, warm_ups: Sequence[Callable[[], None]] = ()
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that adds the writer if it is missing, runs each of `warm_ups` once in a
    thread of its own, and switches to newly promoted models while the app serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Endpoints and chat events wait in threads for the encoders' shared batches: room
        # for every request the server admits (AnyIO's default is 40 threads).
        serving = assistant.settings.serving
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, server_threads(serving))
        writer.start()
        for warm_up in warm_ups:
            threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
        interval = serving.reload_check_seconds
        watcher = ModelWatcher(assistant, interval) if interval > 0 else None
        if watcher is not None:
            watcher.start()
        yield
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)

    return lifespan

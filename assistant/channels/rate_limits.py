"""Bounded work per client: rate limits (moving window, in memory) and a cap on waiting chats.

`/api/chat` counts each conversation (`rate_per_conversation`) and, with
`/api/feedback` and `/api/suggest`, each client address (`rate_per_address`);
the customer page's events are counted per browser tab and per address, and
sign-ins per address (`assistant.channels.page_guard`). Over a rate the answer is
429 with `Retry-After`. Direct clients on `rate_limit_exempt` addresses (by default
this machine's own, for local tools and load tests) are not counted by address, but
their conversations are; behind a proxy, name it in `trusted_proxies` so that each
client is counted by its own address. At most `max_waiting_chats` chat requests are
served at once: one more gets 503, "busy, try again", at once rather than waiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse, storage, strategies
from starlette.types import Scope

from assistant.channels.clients import Clients
from assistant.core.errors import RateLimited, ServerBusy
from assistant.core.settings import Settings


class RateLimits:
    """Named rates over one moving-window limiter; `hit` counts a request or raises."""

    def __init__(self, settings: Settings) -> None:
        serving, access = settings.serving, settings.access
        self.clients = Clients(serving.trusted_proxies, serving.rate_limit_exempt)
        self.rates: dict[str, RateLimitItem] = {
            "conversation": parse(serving.rate_per_conversation),
            "address": parse(serving.rate_per_address),
            "page-session": parse(serving.page_events_per_session),
            "page-address": parse(serving.page_events_per_address),
            "sign-in": parse(access.sign_in_rate_per_address),
        }
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, what: str, *counted: tuple[str, str]) -> None:
        """Count one request against each `(rate, key)`; raises `RateLimited` (and counts
        nothing) if any is spent."""
        for rate, key in counted:
            if not self._limiter.test(self.rates[rate], rate, key):
                raise RateLimited(self._retry_after(rate, key), what)
        for rate, key in counted:
            self._limiter.hit(self.rates[rate], rate, key)

    def hit_client(self, scope: Scope, what: str, *counted: tuple[str, str]) -> None:
        """`hit`, unless the client is exempt (`rate_limit_exempt`)."""
        if not self.clients.exempt(scope):
            self.hit(what, *counted)

    def address(self, scope: Scope) -> str:
        return self.clients.address(scope)

    def _retry_after(self, rate: str, key: str) -> int:
        reset, _ = self._limiter.get_window_stats(self.rates[rate], rate, key)
        return max(1, math.ceil(reset - time.time()))


class ChatSlots:
    """At most `size` chats at once; one more is refused, not queued."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    def take(self) -> None:
        if not self._free.acquire(blocking=False):
            raise ServerBusy("The assistant is busy; try again in a few seconds.")

    def give_back(self) -> None:
        self._free.release()


def install(app: FastAPI, settings: Settings) -> RateLimits:
    app.state.rate_limits = RateLimits(settings)
    app.state.chat_slots = ChatSlots(settings.serving.max_waiting_chats)
    return app.state.rate_limits


async def limit_chat(request: Request) -> None:
    """Per conversation and per address; FastAPI has read the body already, so it is cached."""
    limits: RateLimits = request.app.state.rate_limits
    try:
        body = await request.json()
    except ValueError:
        body = None
    conversation = body.get("conversation_id") if isinstance(body, dict) else None
    # A conversation is counted whoever sends it; an exempt address only spares the address.
    counted = (
        [] if limits.clients.exempt(request.scope) else [("address", limits.address(request.scope))]
    )
    if isinstance(conversation, str):
        counted.append(("conversation", conversation))
    if counted:
        limits.hit("messages", *counted)


async def limit_address(request: Request) -> None:
    limits: RateLimits = request.app.state.rate_limits
    limits.hit_client(request.scope, "requests", ("address", limits.address(request.scope)))


async def chat_slot(request: Request) -> AsyncIterator[None]:
    slots: ChatSlots = request.app.state.chat_slots
    slots.take()
    try:
        yield
    finally:
        slots.give_back()

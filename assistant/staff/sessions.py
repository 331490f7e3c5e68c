"""Staff sign-in sessions: they expire, end everywhere on sign-out, and their cookies stay home.

Gradio keeps each mounted page's sign-ins in `app.tokens` (token -> name) and
looks a cookie's token up there on every request. `StaffSessions` gives each staff
page a `PageTokens` table in its place: a token older than `session_hours` is
gone, and a sign-out on either page (`end_user`) removes that name's tokens on
both. `SessionCookies` rewrites the pages' `Set-Cookie` headers (Gradio asks for
`SameSite=None`) to `SameSite=Lax`, `Secure` when the request came over HTTPS or
`secure_cookies` is on, and runs the sign-out for `GET <page>/logout`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.channels.clients import Clients

COOKIE_PREFIX = "access-token"


class PageTokens(dict[str, str]):
    """One page's sign-ins, as Gradio reads them; tokens expire after `lifetime` seconds."""

    def __init__(self, lifetime: float, clock: Callable[[], float]) -> None:
        super().__init__()
        self._lifetime, self._clock = lifetime, clock
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self.cookie_names: tuple[str, ...] = ()

    def __setitem__(self, token: str, name: str) -> None:
        with self._lock:
            super().__setitem__(token, name)
            self._issued[token] = self._clock()

    def __delitem__(self, token: str) -> None:
        with self._lock:
            super().__delitem__(token)
            self._issued.pop(token, None)

    def __contains__(self, token: object) -> bool:
        self._expire()
        return super().__contains__(token)

    def __getitem__(self, token: str) -> str:
        self._expire()
        return super().__getitem__(token)

    def get(self, token: str | None, default: str | None = None) -> str | None:  # type: ignore[override]
        self._expire()
        return super().get(token, default) if token is not None else default

    def keys(self):  # type: ignore[override]
        self._expire()
        return super().keys()

    def drop_user(self, name: str) -> None:
        with self._lock:
            for token in [t for t, user in self.items() if user == name]:
                super().__delitem__(token)
                self._issued.pop(token, None)

    def _expire(self) -> None:
        oldest = self._clock() - self._lifetime
        with self._lock:
            for token in [t for t, issued in self._issued.items() if issued <= oldest]:
                super().pop(token, None)
                self._issued.pop(token, None)


class StaffSessions:
    """The staff pages' token tables, so that a sign-out on one ends the name on all."""

    def __init__(self, lifetime_hours: float, clock: Callable[[], float] = time.monotonic):
        self._lifetime, self._clock = lifetime_hours * 3600, clock
        self.pages: dict[str, PageTokens] = {}

    def table(self, path: str) -> PageTokens:
        self.pages[path] = PageTokens(self._lifetime, self._clock)
        return self.pages[path]

    def signed_in(self, path: str) -> bool:
        """Whether anyone holds an unexpired sign-in to the page at `path`."""
        tokens = self.pages.get(path)
        return tokens is not None and len(tokens.keys()) > 0

    def end_user(self, name: str) -> None:
        for tokens in self.pages.values():
            tokens.drop_user(name)

    def user_of(self, path: str, cookies: dict[str, str]) -> str | None:
        tokens = self.pages.get(path)
        if tokens is None:
            return None
        for cookie in tokens.cookie_names:
            name = tokens.get(cookies.get(cookie))
            if name is not None:
                return name
        return None


class SessionCookies:
    """Lax (and, over HTTPS, Secure) staff cookies; `<page>/logout` ends the name everywhere."""

    def __init__(
        self,
        app: ASGIApp,
        sessions: StaffSessions,
        clients: Clients,
        always_secure: bool = False,
    ) -> None:
        self.app, self.sessions, self.clients = app, sessions, clients
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        page = self._page(scope) if scope["type"] == "http" else None
        if page is None:
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") == f"{page}/logout":
            cookies = cookie_parser(Headers(scope=scope).get("cookie", ""))
            name = self.sessions.user_of(page, cookies)
            if name is not None:
                self.sessions.end_user(name)
        secure = self.always_secure or self.clients.https(scope)

        async def rewritten(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (key, _cookie(value, secure) if key.lower() == b"set-cookie" else value)
                    for key, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, rewritten)

    def _page(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        return next((p for p in self.sessions.pages if path.startswith(p + "/")), None)


def _cookie(value: bytes, secure: bool) -> bytes:
    text = value.decode("latin-1")
    if not text.lstrip().startswith(COOKIE_PREFIX):
        return value
    kept: Sequence[str] = [
        part.strip()
        for part in text.split(";")
        if part.strip().split("=", 1)[0].strip().lower() not in ("samesite", "secure")
    ]
    extra = ["SameSite=Lax", *(["Secure"] if secure else [])]
    return "; ".join([*kept, *extra]).encode("latin-1")

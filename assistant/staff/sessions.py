"""Staff sign-in sessions: they expire, end everywhere on sign-out, and their cookies stay home.

Gradio keeps each mounted page's sign-ins in `app.tokens` (token -> name) and
looks a cookie's token up there on every request. `StaffSessions` gives each staff
page a `PageTokens` table in its place, kept in the conversation log
(`assistant.core.seams.StaffSignIns`), so that a sign-in on one server is valid on
every other: a token older than `session_hours` is gone, and a sign-out on either
page (`end_user`) removes that name's tokens on both, on every server. Each page's
cookie gets a fixed name (Gradio draws a random one per process, which another server
would not know). `SessionCookies` rewrites the pages' `Set-Cookie` headers (Gradio
asks for `SameSite=None`) to `SameSite=Lax`, `Secure` when the request came over
HTTPS or `secure_cookies` is on, and runs the sign-out for `GET <page>/logout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.channels.clients import Clients
from assistant.core.seams import StaffSignIns
from assistant.staff.memory_sign_ins import MemorySignIns

COOKIE_PREFIX = "access-token"


class PageTokens(MutableMapping[str, str]):
    """One page's sign-ins, as Gradio reads them; tokens expire after `lifetime` seconds.

    Tokens are kept as hashes, so the table cannot list them: it reads as empty when
    iterated, and Gradio's sign-out of all of a name's sessions is done by
    `SessionCookies` through `StaffSessions.end_user` instead.
    """

    def __init__(
        self, page: str, records: StaffSignIns, lifetime: float, clock: Callable[[], float]
    ) -> None:
        self.page, self._records = page, records
        self._lifetime, self._clock = lifetime, clock
        self.cookie_names: tuple[str, ...] = ()

    def __setitem__(self, token: str, name: str) -> None:
        self._records.open_session(token, name, self.page, self._clock(), self._lifetime)

    def __getitem__(self, token: str) -> str:
        name = self.get(token)
        if name is None:
            raise KeyError(token)
        return name

    def get(self, token: str | None, default: str | None = None) -> str | None:  # type: ignore[override]
        if not token:
            return default
        name = self._records.session_user(token, self.page, self._clock() - self._lifetime)
        return default if name is None else name

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.get(token) is not None

    def __delitem__(self, token: str) -> None:
        self._records.end_session(token)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def anyone(self) -> bool:
        """Whether anyone holds an unexpired sign-in to the page, on any server."""
        return self._records.anyone_signed_in(self.page, self._clock() - self._lifetime)


class StaffSessions:
    """The staff pages' token tables, so that a sign-out on one ends the name on all."""

    def __init__(
        self,
        lifetime_hours: float,
        records: StaffSignIns | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._lifetime, self._clock = lifetime_hours * 3600, clock
        self._records = records if records is not None else MemorySignIns()
        self.pages: dict[str, PageTokens] = {}

    def table(self, path: str) -> PageTokens:
        self.pages[path] = PageTokens(path, self._records, self._lifetime, self._clock)
        return self.pages[path]

    def signed_in(self, path: str) -> bool:
        """Whether anyone holds an unexpired sign-in to the page at `path`."""
        tokens = self.pages.get(path)
        return tokens is not None and tokens.anyone()

    def end_user(self, name: str) -> None:
        self._records.end_sessions_of(name)

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

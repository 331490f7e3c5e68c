"""Sign-in for the support team's pages: who may open /agent and /admin, checked twice.

Gradio's own sign-in guards a mounted page: its login form calls `sign_in_check`,
which verifies the argon2 hash in the settings and the page's role, and Gradio
keeps the session in a cookie of that page alone (`assistant.staff.sessions`
makes it expire and end on both pages at sign-out). Every handler checks again
with `require_role`, so an action is refused if the account lost its role or was
removed from the settings. After `sign_in_attempts` wrong passwords for one name
within `sign_in_window_seconds`, that name cannot sign in until the oldest of
them is that old (`SignInThrottle`, counted in the log, so across servers), which
bounds password guessing. An attempt
is counted as failed before its password is checked, and only a success takes
it back, so parallel guesses cannot slip past the count; at most
`sign_in_concurrency` argon2 checks (64 MiB each) run at once, unknown names
included (they are checked against a fixed decoy hash, so the time is the same).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.routing import Mount

from assistant.core.errors import AccessDenied
from assistant.core.seams import StaffSignIns
from assistant.core.settings import Settings, UserAccount
from assistant.staff.accounts import Role, allowed, authenticate
from assistant.staff.memory_sign_ins import MemorySignIns
from assistant.staff.sessions import StaffSessions

AGENT_PATH = "/agent"
ADMIN_PATH = "/admin"
PAGE_ROLES: dict[str, Role] = {AGENT_PATH: "agent", ADMIN_PATH: "admin"}
NO_USERS_HINT = (
    "No agent or admin accounts are configured. Add one with "
    "`assistant add-user NAME --role agent >> assistant.toml` (or `--role admin`) "
    "and restart the server."
)


log = logging.getLogger(__name__)


class SignInThrottle:
    """Counts failed sign-ins per name; a name with `limit` of them within `window` seconds
    is refused, right password or not, until the oldest is `window` seconds old. The
    failures are kept in `records` (the log, so every server counts them together)."""

    def __init__(
        self,
        limit: int,
        window: float,
        records: StaffSignIns | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._records = records if records is not None else MemorySignIns()

    def blocked(self, name: str) -> bool:
        return self._recent(name)[0] >= self.limit

    def reserve(self, name: str) -> bool:
        """Count an attempt as failed before it is checked; False (nothing counted) if the
        name is blocked. `record(name, succeeded=True)` takes it back."""
        return self._records.reserve_sign_in(name, self._clock(), self.window, self.limit)

    def retry_after(self, name: str) -> int:
        """Whole seconds until `name` may try again; 0 if it may now."""
        count, oldest = self._recent(name)
        if count < self.limit or oldest is None:
            return 0
        return max(1, math.ceil(oldest + self.window - self._clock()))

    def record(self, name: str, succeeded: bool) -> None:
        if succeeded:
            self._records.clear_sign_in_failures(name)
        else:
            self._records.reserve_sign_in(name, self._clock(), self.window, limit=2**31)

    def _recent(self, name: str) -> tuple[int, float | None]:
        return self._records.sign_in_failures(name, self._clock() - self.window)


def sign_in_check(
    settings: Settings, role: Role, throttle: SignInThrottle | None = None
) -> Callable[[str, str], Awaitable[bool]]:
    """The check Gradio's login form calls: right password, and a role the page allows."""
    throttle = throttle or new_throttle(settings)
    checking = asyncio.Semaphore(settings.access.sign_in_concurrency)

    async def check(name: str, password: str) -> bool:
        # Reserved before the first await: a burst of guesses all count.
        if not throttle.reserve(name):
            log.warning("sign-in refused for %r: too many wrong passwords recently", name)
            return False
        async with checking:
            # argon2 takes a noticeable fraction of a second on purpose: off the event loop.
            user = await asyncio.to_thread(authenticate, settings, name, password)
        if user is not None:
            throttle.record(name, succeeded=True)
        return user is not None and allowed(user, role)

    return check


def new_throttle(settings: Settings, records: StaffSignIns | None = None) -> SignInThrottle:
    return SignInThrottle(
        settings.access.sign_in_attempts, settings.access.sign_in_window_seconds, records
    )


def _cookie_id(path: str) -> str:
    """The page's cookie suffix: fixed, so that any server reads a cookie another set. The
    name needs no secret (the token is one); it only keeps the pages' cookies apart."""
    return "pebble" + path.replace("/", "-")


def no_users_page() -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>Pebble &amp; Pine</title><p>{NO_USERS_HINT}</p>",
        status_code=404,
    )


def sign_in_message(role: Role) -> str:
    who = "agents and admins" if role == "agent" else "admins"
    return f"Pebble & Pine support team: this page is for {who}. Sign in with your account."


def require_role(settings: Settings, request: gr.Request | None, role: Role) -> UserAccount:
    """The signed-in account if it may act on a `role` page; raises `AccessDenied` if not."""
    name = getattr(request, "username", None)
    if not name:
        raise AccessDenied("You are not signed in; reload the page and sign in.")
    user = next((u for u in settings.access.users if u.name == name), None)
    if user is None:
        raise AccessDenied(f"The account {name!r} is no longer configured; ask an admin.")
    if not allowed(user, role):
        raise AccessDenied(f"This needs the {role} role; {name} is an {user.role}.")
    return user


def mount_signed_in(
    app: FastAPI,
    blocks: gr.Blocks,
    path: str,
    settings: Settings,
    role: Role,
    throttle: SignInThrottle,
    sessions: StaffSessions,
) -> FastAPI:
    """Mount `blocks` at `path` behind Gradio's sign-in, for accounts allowed `role`;
    `throttle` and `sessions` are shared by every page, so failures on one count on all
    and a sign-out on one ends the account's sessions on all."""
    blocks.queue(max_size=settings.serving.queue_max_size)
    gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        auth=sign_in_check(settings, role, throttle),
        auth_message=sign_in_message(role),
        footer_links=[],
        run_history=False,  # past calls hold customers' messages: keep them out of the browser
    )
    page = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == path)
    page.cookie_id = _cookie_id(path)  # the same on every server
    tokens = sessions.table(path)
    tokens.cookie_names = (
        f"access-token-{page.cookie_id}",
        f"access-token-unsecure-{page.cookie_id}",
    )
    page.tokens = tokens  # Gradio reads sign-ins from here on each request
    return app

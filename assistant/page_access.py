"""Sign-in for the support team's pages: who may open /agent and /admin, checked twice.

Gradio's own sign-in guards a mounted page: its login form calls `sign_in_check`,
which verifies the argon2 hash in the settings and the page's role, and Gradio
keeps the session in a cookie of that page alone. Every handler checks again with
`require_role`, so an action is refused if the account lost its role or was
removed from the settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import gradio as gr
from fastapi import FastAPI

from assistant.auth import Role, allowed, authenticate
from assistant.config import Settings, UserAccount

AGENT_PATH = "/agent"
ADMIN_PATH = "/admin"
PAGE_ROLES: dict[str, Role] = {AGENT_PATH: "agent", ADMIN_PATH: "admin"}
NO_USERS_HINT = (
    "No agent or admin accounts are configured. Add one with "
    "`assistant add-user NAME --role agent >> assistant.toml` (or `--role admin`) "
    "and restart the server."
)


class AccessDenied(PermissionError):
    """The request comes from no configured account with the role the page needs."""


def sign_in_check(settings: Settings, role: Role) -> Callable[[str, str], Awaitable[bool]]:
    """The check Gradio's login form calls: right password, and a role the page allows."""

    async def check(name: str, password: str) -> bool:
        # argon2 takes a noticeable fraction of a second on purpose: off the event loop.
        user = await asyncio.to_thread(authenticate, settings, name, password)
        return user is not None and allowed(user, role)

    return check


def sign_in_message(role: Role) -> str:
    who = "agents and admins" if role == "agent" else "admins"
    return f"Pebble & Pine support team: this page is for {who}. Sign in with your account."


def require_role(settings: Settings, request: gr.Request | None, role: Role) -> UserAccount:
    """The signed-in account if it may act on a `role` page; raises `AccessDenied` if not."""
    name = getattr(request, "username", None)
    if not name:
        raise AccessDenied("You are not signed in; reload the page and sign in.")
    user = next((u for u in settings.users if u.name == name), None)
    if user is None:
        raise AccessDenied(f"The account {name!r} is no longer configured; ask an admin.")
    if not allowed(user, role):
        raise AccessDenied(f"This needs the {role} role; {name} is an {user.role}.")
    return user


def mount_signed_in(
    app: FastAPI, blocks: gr.Blocks, path: str, settings: Settings, role: Role
) -> FastAPI:
    """Mount `blocks` at `path` behind Gradio's sign-in, for accounts allowed `role`."""
    return gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        auth=sign_in_check(settings, role),
        auth_message=sign_in_message(role),
        footer_links=[],
        run_history=False,  # past calls hold customers' messages: keep them out of the browser
    )

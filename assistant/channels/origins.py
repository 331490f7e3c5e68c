"""Only the server's own pages (and `allowed_origins`) may act on the staff pages.

A browser sends a signed-in agent's cookie with requests that other pages make
(a page on another port of the same host is even "same-site"), so the cookie
alone cannot tell the agent's page from a hostile one. `OriginGuard` answers 403
to a request under `/agent` or `/admin` that changes something (POST, PUT,
PATCH, DELETE) or uses the Gradio queue, when its `Origin` (or, without one, its
`Referer`) is another origin, or when the browser says it is cross-site
(`Sec-Fetch-Site`). A request with none of these comes from no browser page, so
it carries no one else's cookie. The own origin is the request's `Host`.

Gradio adds its own CORS middleware to each mounted page, which echoes any
origin (with credentials) unless the server is on localhost; it stands aside
when the parent app has Starlette's `CORSMiddleware`, so `add_cors` adds one
that allows `allowed_origins` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.channels.clients import Clients, host_of, origin_of, own_host

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
QUEUE_PATH = "/gradio_api/queue/"
BROWSER_SAFE_SITES = frozenset({"same-origin", "none"})


def add_cors(app: FastAPI, allowed_origins: Sequence[str]) -> None:
    """CORS for `allowed_origins` alone (the own origin needs none); Gradio's stands aside."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(allowed_origins),
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )


class OriginGuard:
    """403 to other origins' state-changing and queue requests under `prefixes`."""

    def __init__(
        self,
        app: ASGIApp,
        prefixes: Sequence[str],
        allowed_origins: Sequence[str],
        clients: Clients,
    ) -> None:
        self.app, self.prefixes, self.clients = app, tuple(prefixes), clients
        self.allowed = {o for o in (origin_of(entry) for entry in allowed_origins) if o}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._guarded(scope) and not self._same_origin(scope):
            refusal = JSONResponse(
                {"error": "This request comes from another site's page; it is refused."},
                status_code=403,
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _guarded(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if not any(path == p or path.startswith(p + "/") for p in self.prefixes):
            return False
        return scope["method"] in UNSAFE_METHODS or QUEUE_PATH in path or _has_origin(scope)

    def _same_origin(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        if headers.get("sec-fetch-site", "same-origin") not in BROWSER_SAFE_SITES:
            claimed = headers.get("origin") or headers.get("referer")
            return claimed is not None and self._allowed(scope, claimed)
        claimed = headers.get("origin") or headers.get("referer")
        return claimed is None or self._allowed(scope, claimed)

    def _allowed(self, scope: Scope, claimed: str) -> bool:
        origin = origin_of(claimed)  # "null" and other non-URLs are refused
        if origin is None:
            return False
        if origin in self.allowed:
            return True
        return host_of(origin) == own_host(scope, self.clients.https(scope))


def _has_origin(scope: Scope) -> bool:
    return "origin" in Headers(scope=scope)

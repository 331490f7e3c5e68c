"""Start the web server: load and warm up the encoders first, then listen (the answer
writer follows in the background)."""

from __future__ import annotations

import time

import uvicorn

from assistant.channels.access_log import logging_config
from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.settings import Settings
from assistant.staff.access import ADMIN_PATH, AGENT_PATH, NO_USERS_HINT


def page_urls(settings: Settings, base_url: str) -> str:
    """Where each page is, for the start-up message."""
    lines = [f"Chat: {base_url}/  API: POST {base_url}/api/chat"]
    if settings.access.users:
        lines.append(f"Agent page: {base_url}{AGENT_PATH}/  Admin page: {base_url}{ADMIN_PATH}/")
    else:
        lines.append(f"Agent and admin pages are off. {NO_USERS_HINT}")
    return "\n".join(lines)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    started = time.perf_counter()
    # The answer writer is added once the server answers (`assistant.channels.lifespan`).
    assistant = Assistant.load(settings, writer=False)
    assistant.warm_up()
    host, port = host or settings.serving.host, port or settings.serving.port
    later = " The answer writer loads in the background." if settings.generator.enabled else ""
    print(
        f"Models loaded and warmed up in {time.perf_counter() - started:.1f} s "
        f"({assistant.model_version}).{later}\n{page_urls(settings, f'http://{host}:{port}')}",
        flush=True,
    )
    # Forwarded headers are read by the app, from `trusted_proxies` only.
    app = create_app(assistant)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        log_config=logging_config(),
    )

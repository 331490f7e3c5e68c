"""Start the web server: load and warm up the models first, then listen."""

from __future__ import annotations

import time

import uvicorn

from assistant.api import create_app
from assistant.config import Settings
from assistant.pipeline import Assistant


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    started = time.perf_counter()
    assistant = Assistant.load(settings)
    assistant.warm_up()
    host, port = host or settings.host, port or settings.port
    print(
        f"Models loaded and warmed up in {time.perf_counter() - started:.1f} s "
        f"({assistant.model_version}).\n"
        f"Chat: http://{host}:{port}/  API: POST http://{host}:{port}/api/chat",
        flush=True,
    )
    uvicorn.run(create_app(assistant), host=host, port=port, log_level="info")

"""An app over the fakes with one agent and one admin: no model is trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.settings import UserAccount
from tests.conftest import write_demo_slice
from tests.fakes import fake_settings


def fake_app(root: Path, staff: list[UserAccount] | None = None, **overrides: Any) -> FastAPI:
    data = root / "data"
    if not data.exists():
        write_demo_slice(data)
    settings = fake_settings(data, users=staff or [], **overrides)
    return create_app(Assistant.load(settings))

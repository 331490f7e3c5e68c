"""Shared fixtures: a small slice of the demo data, and models trained on it once per session."""

from __future__ import annotations

import copy
import csv
import json
import shutil
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from assistant.core.pipeline import Assistant
from assistant.core.settings import Settings, UserAccount
from assistant.datasets.loading import load_dataset
from assistant.generation.writer import Gpt2AnswerWriter
from assistant.lifecycle.build import ensure_artifacts
from assistant.staff.accounts import hash_password
from tests import postgres
from tests.fakes import FixedWriter

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = ROOT / "data"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
SLICE_INTENTS = ("greeting", "order_status", "shipping_cost", "human_agent", "return_policy")
EXAMPLES_PER_INTENT = 16
OUT_OF_SCOPE_EXAMPLES = 16
AGENT_NAME, AGENT_PASSWORD = "ana", "ana-knows-parcels"
ADMIN_NAME, ADMIN_PASSWORD = "sam", "sam-reads-figures"


# Fixtures that train or load real models; a test using any of them is marked `models`.
MODEL_FIXTURES = frozenset({"built_settings", "assistant", "eager", "staffed"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the engine every conversation log in the tests runs on (tests/storage runs "
        "on both either way)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--database") != "postgresql":
        return
    reason = postgres.unavailable()
    if reason is not None:
        raise pytest.UsageError(f"--database postgresql: {reason}")
    server = postgres.PostgresServer().start()
    config.add_cleanup(server.stop)
    postgres.use_for_every_log(server)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL server of the session's own; the tests that need it skip, saying why,
    where none can be started."""
    reason = postgres.unavailable()
    if reason is not None:
        pytest.skip(f"no PostgreSQL server for this test: {reason}")
    server = postgres.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def log_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the test's log lives: a SQLite file of its own, then a schema of its own on the
    test PostgreSQL server: every test that takes it runs on both engines."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_server").database_url()
    return tmp_path / "log.db"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_demo_slice(target: Path) -> Path:
    """Copy a few intents of the demo data into `target`, in the same format."""
    target.mkdir(parents=True, exist_ok=True)
    per_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _rows(DEMO_DATA / "intents.csv"):
        if row["intent"] in SLICE_INTENTS and len(per_intent[row["intent"]]) < EXAMPLES_PER_INTENT:
            per_intent[row["intent"]].append(row)
    _write_rows(target / "intents.csv", [row for rows in per_intent.values() for row in rows])
    out_of_scope = _rows(DEMO_DATA / "out_of_scope.csv")[:OUT_OF_SCOPE_EXAMPLES]
    _write_rows(target / "out_of_scope.csv", out_of_scope)
    pairs = [row for row in _rows(DEMO_DATA / "qa_pairs.csv") if row["intent"] in SLICE_INTENTS]
    _write_rows(target / "qa_pairs.csv", pairs)
    templates = json.loads((DEMO_DATA / "templates.json").read_text(encoding="utf-8"))
    templates["templates"] = {
        intent: text for intent, text in templates["templates"].items() if intent in SLICE_INTENTS
    }
    (target / "templates.json").write_text(json.dumps(templates), encoding="utf-8")
    return target


def slice_settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": root / "data",
        "models_dir": root / "models",
        "index_dir": root / "index",
        "database_path": root / "var" / "conversations.db",
        "database_url": _log_url(root / "var" / "conversations.db"),
        "epochs": 10,
        "batch_size": 16,
        "early_stopping_patience": 10,
        "validation_fraction": 0.2,
        # A tiny generator: tests check how it is wired and checked, not how well it writes.
        "generator_layers": 1,
        "generator_hidden_size": 32,
        "generator_heads": 2,
        "generator_vocab_size": 300,
        "generator_epochs": 2,
        "generator_answer_tokens": 96,  # room for a whole sentence of the past answers
    }
    values.update(overrides)
    return Settings(**values)


def _log_url(path: Path) -> str:
    """The `database_url` setting for a test's log: empty for SQLite at `database_path`."""
    location = postgres.log_for_test(path)
    return location if isinstance(location, str) else ""


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose intent model and index are trained and built on the demo slice."""
    root = tmp_path_factory.mktemp("built")
    write_demo_slice(root / "data")
    settings = slice_settings(root)
    ensure_artifacts(load_dataset(settings.data_dir), settings, announce=lambda _: None)
    return settings


@pytest.fixture(scope="session")
def assistant(built_settings: Settings) -> Assistant:
    loaded = Assistant.load(built_settings)
    loaded.warm_up()
    return loaded


@pytest.fixture
def writer_gate() -> Iterator[threading.Event]:
    """Closed: `tests.fakes.FixedWriter` stays loading until the test opens it."""
    FixedWriter.gate.clear()
    yield FixedWriter.gate
    FixedWriter.gate.set()
    FixedWriter.refusal = None


@pytest.fixture
def demo_slice(tmp_path: Path) -> Path:
    return write_demo_slice(tmp_path / "data")


@pytest.fixture(scope="session")
def eager(assistant: Assistant, built_settings: Settings) -> Assistant:
    """The session's models behind a router that trusts the small intent model more."""
    settings = built_settings.model_copy(update={"intent_threshold": 0.3, "ambiguity_margin": 0.0})
    return with_settings(assistant, settings)


@pytest.fixture(scope="session")
def staff() -> list[UserAccount]:
    """One agent and one admin; only the argon2 hashes of their passwords are kept."""
    return [
        UserAccount(name=AGENT_NAME, role="agent", password_hash=hash_password(AGENT_PASSWORD)),
        UserAccount(name=ADMIN_NAME, role="admin", password_hash=hash_password(ADMIN_PASSWORD)),
    ]


@pytest.fixture(scope="session")
def staffed(eager: Assistant, staff: list[UserAccount]) -> Assistant:
    """The eager assistant with an agent and an admin configured."""
    return with_settings(eager, eager.settings.model_copy(update={"users": staff}))


def with_settings(
    assistant: Assistant, settings: Settings, generator: Gpt2AnswerWriter | None = None
) -> Assistant:
    """The session's loaded models and log behind a router made from `settings`."""
    return Assistant(
        settings,
        assistant.classifier,
        assistant.retriever,
        assistant.router.templates,
        assistant.store,
        generator,
    )


def writing_assistant(
    assistant: Assistant,
    built_settings: Settings,
    grounding_threshold: float,
    fallback_threshold: float,
) -> Assistant:
    """The session's models routed so that every message gets a written answer, with the
    given grounding threshold and fallback threshold."""
    settings = built_settings.model_copy(
        update={
            "intent_threshold": 1.0,
            "retrieval_threshold": 1.01,
            "generation_threshold": -1.0,
            "fallback_retrieval_threshold": fallback_threshold,
        }
    )
    generator = copy.copy(assistant.generator)
    generator.grounding_threshold = grounding_threshold
    return with_settings(assistant, settings, generator)


def copy_of_built(built_settings: Settings, root: Path, **overrides: object) -> Settings:
    """The session's data and built models copied under `root`, for a test that changes them."""
    folders = {name: root / name for name in ("data_dir", "models_dir", "index_dir")}
    for name, target in folders.items():
        shutil.copytree(getattr(built_settings, name), target)
    database = root / "var" / "conversations.db"
    update = {
        **folders,
        "database_path": database,
        "database_url": _log_url(database),
        **overrides,
    }
    return built_settings.model_copy(update=update)


def environment_for(settings: Settings) -> dict[str, str]:
    """`ASSISTANT_*` variables that give another process these settings."""
    environment = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value != field.default and isinstance(value, str | int | float | Path):
            environment[f"ASSISTANT_{name.upper()}"] = str(value)
    return environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread (its lifespan included); yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    with serving(config) as base_url:
        yield base_url


@contextmanager
def serving(config: uvicorn.Config) -> Iterator[str]:
    """Run a uvicorn server configured by `config` in a thread; yields its base URL."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

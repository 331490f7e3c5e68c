"""The server answers before its answer writer is loaded and adds the writer when it is;
one that cannot be loaded is reported while the server goes on answering."""

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.channels.api import create_app
from assistant.channels.lifespan import WriterLoading, serving_lifespan
from assistant.core.errors import ArtifactError
from assistant.core.pipeline import Assistant
from tests.fakes import WITH_WRITER, FixedWriter, fake_settings


def without_writer_yet(data: Path) -> Assistant:
    settings = fake_settings(data, generator_enabled=True, components=WITH_WRITER)
    return Assistant.load(settings, writer=False)


def test_the_server_answers_while_its_writer_loads_then_writes(demo_slice, writer_gate):
    assistant = without_writer_yet(demo_slice)
    with TestClient(create_app(assistant, with_ui=False)) as client:
        health = client.get("/api/health").json()
        assert health["writer"] == "loading"
        assert "generator" not in health["model_version"]
        assert assistant.router.policy.generation_threshold is None  # no route writes yet
        assert client.post("/api/chat", json={"message": "where is my parcel"}).is_success

        writer_gate.set()
        assert client.app.state.writer.wait(timeout_s=30) == "ready"
        health = client.get("/api/health").json()
        assert health["writer"] == "ready"
        assert health["model_version"].endswith("generator:fixed-1")
        threshold = assistant.settings.routing.generation_threshold
        assert assistant.router.policy.generation_threshold == threshold


@pytest.mark.parametrize(
    ("refusal", "logged"),
    [
        (ArtifactError("no answer writer was built"), "no answer writer was built"),
        (RuntimeError("out of memory"), "RuntimeError: out of memory"),
    ],
)
def test_a_writer_that_cannot_load_is_reported_and_answering_goes_on(
    demo_slice, writer_gate, caplog, refusal, logged
):
    FixedWriter.refusal = refusal
    writer_gate.set()
    assistant = without_writer_yet(demo_slice)
    with caplog.at_level(logging.ERROR), TestClient(create_app(assistant, with_ui=False)) as client:
        assert client.app.state.writer.wait(timeout_s=30) == "failed"
        assert client.get("/api/health").json()["writer"] == "failed"
        assert client.post("/api/chat", json={"message": "where is my parcel"}).is_success
    assert "serving without the answer writer" in caplog.text
    assert client.app.state.writer.error.endswith(logged)


def test_nothing_loads_when_the_writer_serves_already_or_writing_is_off(demo_slice):
    settings = fake_settings(demo_slice, generator_enabled=True, components=WITH_WRITER)
    loaded = Assistant.load(settings)
    writing = WriterLoading(loaded)
    writing.start()
    assert writing.wait(timeout_s=0) == "ready"
    assert loaded.generator is not None

    off = WriterLoading(Assistant.load(fake_settings(demo_slice)))
    off.start()
    assert off.wait(timeout_s=0) == "off"

    # Made without a writer on purpose (as tests of the routes without one do): left so.
    parts = (loaded.classifier, loaded.retriever, loaded.router.templates, loaded.store)
    without = Assistant(settings, *parts)
    left = WriterLoading(without)
    left.start()
    assert left.wait(timeout_s=5) == "off"
    assert without.generator is None


def test_warm_ups_run_in_their_own_thread_once_the_app_serves(demo_slice):
    assistant = Assistant.load(fake_settings(demo_slice))
    ran: list[str] = []
    done = threading.Event()

    def warm_up() -> None:
        ran.append(threading.current_thread().name)
        done.set()

    app = FastAPI(lifespan=serving_lifespan(assistant, WriterLoading(assistant), [warm_up]))
    assert not ran  # nothing runs until the app starts serving
    with TestClient(app):
        assert done.wait(10)
    assert ran == ["warm-up"]


def test_the_page_prepares_what_its_first_event_would_import():
    # In a fresh interpreter, as in a server just started (a module cannot be imported twice).
    fresh = (
        "import sys\n"
        "from assistant.channels.web_chat import prepare_events\n"
        "assert 'matplotlib' not in sys.modules\n"
        "prepare_events()\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", fresh], check=True, cwd=Path(__file__).parents[2])

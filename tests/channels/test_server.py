import os
import subprocess
import sys

from fastapi.testclient import TestClient

from assistant.channels import server
from assistant.channels.server import page_urls
from tests.conftest import ROOT, environment_for
from tests.fakes import WITH_WRITER, fake_settings


def test_the_start_up_message_names_each_page(staffed):
    text = page_urls(staffed.settings, "http://127.0.0.1:7860")
    assert "Chat: http://127.0.0.1:7860/" in text
    assert "Agent page: http://127.0.0.1:7860/agent/" in text
    assert "Admin page: http://127.0.0.1:7860/admin/" in text


def test_without_accounts_it_says_how_to_add_one(assistant):
    text = page_urls(assistant.settings, "http://127.0.0.1:7860")
    assert "Agent and admin pages are off" in text
    assert "assistant add-user NAME --role agent" in text


def test_serve_listens_before_the_writer_is_loaded(demo_slice, writer_gate, monkeypatch):
    settings = fake_settings(demo_slice, generator_enabled=True, components=WITH_WRITER)
    started: list = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: started.append(app))
    server.serve(settings, port=7861)
    (app,) = started
    assert app.state.assistant.generator is None
    with TestClient(app) as client:  # the app's start-up begins loading the writer
        assert client.get("/api/health").json()["writer"] == "loading"
        writer_gate.set()
        assert app.state.writer.wait(timeout_s=30) == "ready"


def test_onnx_models_serve_without_importing_pytorch(built_settings):
    """A server whose encoders and answer writer are on ONNX has no use for PyTorch or
    transformers, which would take seconds of its start and hundreds of megabytes."""
    script = (
        "import sys\n"
        "from assistant.channels.api import create_app\n"
        "from assistant.core.pipeline import Assistant\n"
        "from assistant.core.settings import load_settings\n"
        "served = Assistant.load(load_settings())\n"
        "create_app(served)\n"
        "served.reply('where is my parcel')\n"
        "assert served.generator.generate('where is my parcel', ['It ships today.']) is not None\n"
        "runtimes = (served.classifier.runtime, served.retriever.encoder.runtime,"
        " served.generator.runtime)\n"
        "print(*runtimes, sep='|')\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    environment = {**os.environ, **environment_for(built_settings), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    runtimes, imported = run.stdout.strip().splitlines()[-2:]
    assert all(runtime.startswith("onnx") for runtime in runtimes.split("|"))
    assert imported == "[]"

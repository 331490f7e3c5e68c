"""The planted-PII corpus through the whole product, against a real server.

Every corpus message goes to `/api/chat` over HTTP; agents answer some conversations
quoting the customers' numbers and approve those answers for reuse; the log is exported
in every format, retrained on (promoted), and the new index answers `/api/suggest`. Then
not one planted value may be found in the database, the exports, the files retraining
wrote (the index's texts among them), the traces, a response body, or the server's log.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from assistant.analytics.export import ExportFormat, export_log, write_export
from assistant.channels.access_log import logging_config
from assistant.channels.api import create_app
from assistant.core.pipeline import Assistant
from assistant.core.settings import ApiKey, Settings
from assistant.datasets.loading import load_dataset
from assistant.lifecycle.releases import live_versions
from assistant.lifecycle.retrain import read_log_file, retrain
from assistant.staff.accounts import hash_api_key
from assistant.text.redaction import Redactor
from tests.conftest import AGENT_NAME, copy_of_built, free_port, serving
from tests.lifecycle.test_hot_reload import wait_for_version
from tests.pii_corpus import PUBLIC_CONTACTS, Leak, LeakFinder, load_planted_pii

CORPUS = load_planted_pii()
FINDER = LeakFinder(CORPUS)
CONVERSATIONS = 10  # 24 messages each: within `rate_per_conversation` (30 a minute)
STREAM_EVERY = 8  # every 8th message asks for server-sent events
AGENT_ANSWERED = 4  # conversations an agent answers; all but the last approved for reuse
API_KEY = "privacy-helpdesk-key"
WEIGHTS = ".safetensors"  # tensors only; every other file retraining writes is read
AFTER = 10  # messages sent once the retrained models serve
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def test_the_finder_sees_each_planted_value_in_its_own_message():
    for row in CORPUS:
        assert {leak.value for leak in FINDER.find(row.message, "corpus")} >= set(row.planted)
    card = "4205 9972 8379 2986"
    assert card in FINDER.values
    partial = FINDER.find('{"reply": "the card ending 9972 8379 is on file"}', "a trace")
    assert [leak.value for leak in partial] == [card]
    assert "in a trace" in str(partial[0]) and "9972 8379" in str(partial[0])
    assert "jane.doe@example.co.uk" in {leak.value for leak in FINDER.find("JANE.DOE wrote", "")}


def test_the_finder_passes_what_is_nobodys_and_every_redacted_message():
    noise = [
        '{"created_at": "2026-12-02T01:55:37.205935+00:00", "score": 0.8734521, "p": 12.345678}',
        "intent:20261202-015535-071749 index:20261202-015537-205935",
        "conversation 3f2a9b1c8d7e4f6a9b0c1d2e3f4a5b6c, digest " + "0123456789abcdef" * 4,
        '127.0.0.1:51234 - "POST /api/chat HTTP/1.1" 200',
        *[keep for row in CORPUS for keep in row.kept],
        *PUBLIC_CONTACTS,
    ]
    redact = Redactor(PUBLIC_CONTACTS)
    assert FINDER.find("\n".join(noise), "noise") == []
    assert [leak for row in CORPUS for leak in FINDER.find(redact(row.message), "log")] == []


@dataclass
class Seen:
    """Everything the flow saw or left behind, as (where, text), and the leaks found in it."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, where: str, text: str) -> None:
        self.texts.append((where, text))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.leaks += FINDER.find(text, where)

    def add_bytes(self, kind: str, where: str, data: bytes) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.leaks += FINDER.find_in_bytes(data, where)


@pytest.fixture
def own_settings(built_settings: Settings, tmp_path: Path) -> Settings:
    """A copy of the session's built models, served eagerly, with a help-desk key."""
    return copy_of_built(
        built_settings,
        tmp_path / "served",
        reload_check_seconds=0.2,
        intent_threshold=0.3,
        ambiguity_margin=0.0,
        api_keys=[ApiKey(name="helpdesk", sha256=hash_api_key(API_KEY))],
    )


@contextmanager
def logged_server(app: Any) -> Iterator[tuple[str, io.StringIO]]:
    """Serve `app` as `assistant serve` does (uvicorn's info log with the private access
    log), the server's log written to the yielded buffer instead of the terminal."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="info", log_config=logging_config()
    )
    log = io.StringIO()
    for name in SERVER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log)
    with serving(config) as base_url:
        yield base_url, log


def chat_everything(client: httpx.Client, seen: Seen) -> list[str]:
    """Every corpus message, in `CONVERSATIONS` conversations; returns their ids."""
    per_conversation = -(-len(CORPUS) // CONVERSATIONS)
    conversations: list[str] = []
    for number, row in enumerate(CORPUS):
        body: dict[str, Any] = {"message": row.message}
        if number % per_conversation:
            body["conversation_id"] = conversations[-1]
        body["stream"] = number % STREAM_EVERY == STREAM_EVERY - 1
        response = client.post("/api/chat", json=body)
        assert response.status_code == 200, (number, response.text)
        seen.add("chat responses", f"the /api/chat response to message {number}", response.text)
        if not number % per_conversation:
            conversations.append(response.json()["conversation_id"])
    return conversations


def answer_as_an_agent(assistant: Assistant, conversations: list[str], seen: Seen) -> None:
    """An agent answers the latest turn of a few conversations quoting the customer's
    numbers and emails, corrects its intent, and approves the answer for reuse."""
    per_conversation = -(-len(CORPUS) // CONVERSATIONS)
    store = assistant.store
    for number, conversation in enumerate(conversations[:AGENT_ANSWERED]):
        rows = CORPUS[number * per_conversation : (number + 1) * per_conversation]
        quoted = [value for row in rows for value in row.planted][:3]
        text = f"I've updated {quoted[0]} on file for you; I'll write to {quoted[1]} once done."
        suggestion = f"Shall I put {quoted[2]} on file for you?"
        line = store.agent_reply(conversation, AGENT_NAME, text, suggestion=suggestion)
        turn = store.turns(conversation)[-1]["id"]
        store.correct_intent(turn, AGENT_NAME, "order_status")
        if number == AGENT_ANSWERED - 1:
            store.review_answer(line, AGENT_NAME, approved=False)
        elif number == AGENT_ANSWERED - 2:  # the pair edited in review, quoting again
            question = f"Can you put {quoted[2]} on file for my order?"
            store.review_answer(line, AGENT_NAME, True, question, f"Done: {quoted[2]} on file.")
        else:
            store.review_answer(line, AGENT_NAME, approved=True)
        seen.add(
            "agent views",
            f"the agent's view of conversation {number}",
            str(store.history(conversation)),
        )


def export_everything(assistant: Assistant, folder: Path, seen: Seen) -> Path:
    export = export_log(assistant.store)
    assert export.rows, export.summary()
    for export_format in ExportFormat:
        path = folder / f"log.{export_format.value}"
        write_export(export, export_format, path)
        seen.add("export files", f"the {export_format.value} export", path.read_text("utf-8"))
    return folder / "log.jsonl"


def suggest_for_the_corpus(client: httpx.Client, seen: Seen) -> None:
    """A help desk asks for suggestions on corpus messages, with corpus history, once the
    index holds the approved answers."""
    for number, row in enumerate(CORPUS[:: len(CORPUS) // 20]):
        history = [{"role": "customer", "text": CORPUS[number].message}]
        response = client.post(
            "/api/suggest",
            json={"message": row.message, "history": history},
            headers={"X-API-Key": API_KEY},
        )
        assert response.status_code == 200, response.text
        assert response.json()["suggestions"]
        seen.add("suggest responses", f"the /api/suggest response {number}", response.text)


def chat_after_retraining(client: httpx.Client, seen: Seen) -> None:
    """One more conversation, answered by the retrained models and their new index."""
    conversation = None
    for number, row in enumerate(CORPUS[:: len(CORPUS) // AFTER]):
        body = {"message": row.message, "conversation_id": conversation}
        response = client.post("/api/chat", json=body)
        assert response.status_code == 200, response.text
        conversation = response.json()["conversation_id"]
        seen.add(
            "chat responses", f"the /api/chat response {number} after retraining", response.text
        )


def read_database(path: Path, seen: Seen) -> None:
    """Every text cell of every table, read through SQLite, then the files as bytes."""
    connection = sqlite3.connect(path)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (table,) in tables.fetchall():
            cursor = connection.execute(f'SELECT rowid, * FROM "{table}"')
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns[1:], row[1:], strict=True):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        kind = "traces" if column == "trace" else "database cells"
                        seen.add(kind, f"the database: {table}.{column}, row {row[0]}", value)
    finally:
        connection.close()
    for file in path.parent.glob(path.name + "*"):  # the database, its WAL and journal
        seen.add_bytes("database files", f"the database file {file.name}", file.read_bytes())


def file_digests(folders: list[Path]) -> set[str]:
    return {
        hashlib.sha256(file.read_bytes()).hexdigest()
        for folder in folders
        for file in folder.rglob("*")
        if file.is_file()
    }


def read_written_files(folders: list[Path], before: set[str], seen: Seen) -> None:
    """Each file under `folders` that no build before the corpus wrote, byte for byte the
    same (a pretrained tokenizer saved again holds names such as "jane"): as UTF-8 text
    when it is, else as bytes; weights are tensors and left out."""
    for folder in folders:
        for file in sorted(folder.rglob("*")):
            if not file.is_file() or file.suffix == WEIGHTS:
                continue
            data = file.read_bytes()
            if hashlib.sha256(data).hexdigest() in before:
                continue
            where = f"the file {file.relative_to(folder.parent)}"
            try:
                seen.add("files written", where, data.decode("utf-8"))
            except UnicodeDecodeError:
                seen.add_bytes("files written", where, data)


def leak_report(leaks: list[Leak], places: int = 40) -> str:
    """Which planted values were found where: a line a place, each with an excerpt."""
    by_place: dict[str, list[Leak]] = {}
    for leak in leaks:
        by_place.setdefault(leak.where, []).append(leak)
    lines = [
        f"{where}: {', '.join(repr(leak.value) for leak in found[:3])}"
        f"{f' and {len(found) - 3} more' if len(found) > 3 else ''}: ...{found[0].excerpt}..."
        for where, found in list(by_place.items())[:places]
    ]
    more = f"\n... and {len(by_place) - places} more places" if len(by_place) > places else ""
    return (
        f"{len(leaks)} planted values found in {len(by_place)} places:\n" + "\n".join(lines) + more
    )


def indexed_rows(settings: Settings) -> list[dict[str, str]]:
    folder = settings.qa_index_dir / live_versions(settings).index
    lines = (folder / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_no_planted_value_is_kept_anywhere_after_chat_agents_export_and_retrain(
    built_settings: Settings,
    own_settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    caplog.set_level(logging.INFO)
    folders = [own_settings.data_dir, own_settings.models_dir, own_settings.index_dir]
    before = file_digests(
        [built_settings.models_dir, built_settings.index_dir, built_settings.data_dir]
    )
    seen = Seen()
    started = time.monotonic()
    assistant = Assistant.load(own_settings)
    assistant.warm_up()
    old = assistant.models.versions
    with (
        logged_server(create_app(assistant, with_ui=False)) as (url, server_log),
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        conversations = chat_everything(client, seen)
        answer_as_an_agent(assistant, conversations, seen)
        for number, conversation in enumerate(conversations):
            polled = client.get(f"/api/conversations/{conversation}/messages")
            assert polled.status_code == 200, polled.text
            seen.add("chat responses", f"the messages of conversation {number}", polled.text)
        exported = export_everything(assistant, tmp_path, seen)
        announced: list[str] = []
        result = retrain(
            load_dataset(own_settings.data_dir),
            own_settings,
            read_log_file(exported),
            force=True,
            announce=announced.append,
        )
        assert result.promoted and result.counts["agent_answers_added"] >= 1, result.counts
        wait_for_version(url, live_versions(own_settings).describe())
        suggest_for_the_corpus(client, seen)
        chat_after_retraining(client, seen)
    seen.add("server log", "the retraining's messages", "\n".join(announced))
    seen.add("server log", "uvicorn's log", server_log.getvalue())
    seen.add("server log", "the application's log records", caplog.text)
    out, err = capfd.readouterr()
    seen.add("server log", "the test process's stdout and stderr", out + err)
    read_database(own_settings.database_path, seen)
    read_written_files(folders, before, seen)

    # The flow did what it says: each place looked in holds what it should.
    assert live_versions(own_settings) != old
    answers = [row["answer"] for row in indexed_rows(own_settings)]
    assert any("on file" in answer for answer in answers), "no approved answer was indexed"
    assert server_log.getvalue().count('"POST /api/chat HTTP/1.1" 200') == len(CORPUS) + AFTER
    assert seen.counts["traces"] >= len(CORPUS)
    assert seen.counts["chat responses"] == len(CORPUS) + CONVERSATIONS + AFTER
    if seen.leaks:
        pytest.fail(leak_report(seen.leaks), pytrace=False)

    planted = sum(len(row.planted) for row in CORPUS)
    places = ", ".join(f"{n} {kind}" for kind, n in sorted(seen.counts.items()))
    print(
        f"\n{planted} planted values ({len(FINDER.values)} distinct) in {len(CORPUS)} messages, "
        f"0 found in {places}; {time.monotonic() - started:.0f} s"
    )

import re

from assistant.cli import main
from assistant.core.records import TurnRecord
from assistant.storage.copying import TableCopy
from assistant.storage.store import ConversationStore


def _small_log(path):
    store = ConversationStore(path)
    for _ in range(2):
        conversation = store.start_conversation()
        store.log_turn(
            TurnRecord(
                conversation_id=conversation,
                user_text="can I change the delivery address",
                reply_text="Yes, until the parcel ships.",
                route="template",
                intent="change_address",
                confidence=0.9,
                reason="matched",
                sources=[],
                trace={},
                latency_ms=4.0,
                model_version="intent:v1",
            )
        )
    store.close()
    return path


def _counts(out):
    """table -> (SQLite, PostgreSQL, copied now), from the printed table."""
    rows = re.findall(r"^(\w+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", out, re.MULTILINE)
    return {name: tuple(int(n.replace(",", "")) for n in numbers) for name, *numbers in rows}


def test_db_copy_prints_the_counts_and_a_rerun_copies_nothing(tmp_path, postgres_server, capsys):
    path, url = _small_log(tmp_path / "log.db"), postgres_server.database_url()
    assert main(["db", "copy", str(path), url]) == 0
    out, err = capsys.readouterr()
    counts = _counts(out)
    assert counts["turns"] == (2, 2, 2) and counts["messages"] == (4, 4, 4)
    assert counts["conversations"] == (2, 2, 2) and counts["feedback"] == (0, 0, 0)
    assert "Every table has the same rows in both." in out
    assert "contact.key" in err and "ASSISTANT_CONTACT_KEY" in err
    assert main(["db", "copy", str(path), url, "--chunk-rows", "1"]) == 0
    assert {copied for *_, copied in _counts(capsys.readouterr().out).values()} == {0}


def test_db_copy_exits_1_when_the_counts_differ(tmp_path, monkeypatch, capsys):
    path = _small_log(tmp_path / "log.db")
    counts = [TableCopy("conversations", 3, 2, 2), TableCopy("turns", 2, 2, 2)]
    monkeypatch.setattr("assistant.storage.copying.copy_log", lambda *_, **__: counts)
    assert main(["db", "copy", str(path), "postgresql://localhost/log"]) == 1
    out, err = capsys.readouterr()
    assert _counts(out) == {"conversations": (3, 2, 2), "turns": (2, 2, 2)}
    assert "error: the row counts differ in conversations." in err


def test_db_copy_refuses_a_target_with_rows_of_its_own(tmp_path, postgres_server, capsys):
    path, url = _small_log(tmp_path / "log.db"), postgres_server.database_url()
    store = ConversationStore(url)
    store.start_conversation()
    store.close()
    assert main(["db", "copy", str(path), url]) == 2
    assert "conversations is not a copy of this SQLite log's" in capsys.readouterr().err


def test_db_copy_refuses_a_missing_source_or_a_target_not_postgresql(tmp_path, capsys):
    assert main(["db", "copy", str(tmp_path / "none.db"), "postgresql://localhost/log"]) == 2
    assert "error: no SQLite log at" in capsys.readouterr().err
    path = _small_log(tmp_path / "log.db")
    assert main(["db", "copy", str(path), str(tmp_path / "other.db")]) == 2
    assert "must be a postgresql:// URL" in capsys.readouterr().err

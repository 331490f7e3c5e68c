import io
import json

import pytest

from assistant.cli import main
from assistant.lifecycle.versions import make_version_current


def test_data_validate_prints_counts(demo_slice, capsys):
    assert main(["data", "validate", str(demo_slice)]) == 0
    out = capsys.readouterr().out
    assert "intents: 5" in out
    assert "out of scope: 16" in out


def test_data_validate_json(demo_slice, capsys):
    assert main(["data", "validate", str(demo_slice), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intents"] == 5
    assert report["templates"] == 5
    assert report["examples"] == 80
    assert report["warnings"] == []


def test_data_validate_points_at_the_broken_line(demo_slice, capsys):
    lines = (demo_slice / "qa_pairs.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = '"an unterminated quote,the answer,greeting'
    (demo_slice / "qa_pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["data", "validate", str(demo_slice)]) == 2
    assert "qa_pairs.csv, line 4: malformed CSV" in capsys.readouterr().err


def test_data_validate_warns_about_missing_templates(demo_slice, capsys):
    templates = json.loads((demo_slice / "templates.json").read_text())
    del templates["templates"]["greeting"]
    (demo_slice / "templates.json").write_text(json.dumps(templates))
    assert main(["data", "validate", str(demo_slice), "--json"]) == 0
    assert "no template for ['greeting']" in json.loads(capsys.readouterr().out)["warnings"][0]


def point_at(settings, monkeypatch):
    for name in ("data_dir", "models_dir", "index_dir", "database_path"):
        monkeypatch.setenv(f"ASSISTANT_{name.upper()}", str(getattr(settings, name)))


def test_terminal_chat_answers_and_explains(built_settings, monkeypatch, capsys):
    point_at(built_settings, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n\x00\nhow much is shipping\n"))
    assert main(["chat", "--trace"]) == 0
    out = capsys.readouterr().out
    assert out.count("assistant: ") == 2
    assert "! The message is empty" in out
    assert "**Route:**" in out


def test_serving_without_built_models_says_how_to_build(tmp_path, demo_slice, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(demo_slice))
    monkeypatch.setenv("ASSISTANT_MODELS_DIR", str(tmp_path / "models"))
    assert main(["serve"]) == 2
    assert "assistant train" in capsys.readouterr().err


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["fly"])


def _labelled_file(tmp_path, demo_slice, name, rows):
    """The demo slice's examples under other column names, as a user's own file might be."""
    import csv

    with (demo_slice / "intents.csv").open(encoding="utf-8") as handle:
        examples = list(csv.DictReader(handle))[rows]
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utterance", "label"])
        writer.writerows([row["text"], row["intent"]] for row in examples)
    return path


def test_train_and_evaluate_any_file(tmp_path, demo_slice, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_EPOCHS", "2")
    train = _labelled_file(tmp_path, demo_slice, "train.csv", slice(None, None))
    test = _labelled_file(tmp_path, demo_slice, "test.csv", slice(None, None, 8))
    columns = ["--text-column", "utterance", "--intent-column", "label"]
    models = ["--models-dir", str(tmp_path / "models")]
    assert main(["train", "--data", str(train), *columns, *models]) == 0
    out = capsys.readouterr().out
    assert "Training on 72 examples, validating on 8" in out
    assert "validation: accuracy" in out
    report = tmp_path / "report"
    command = ["evaluate", "--test", str(test), *columns, *models, "--report", str(report)]
    assert main(command) == 0
    assert "accuracy" in capsys.readouterr().out
    saved = json.loads((report / "report.json").read_text())
    assert saved["examples"] == 10
    assert (report / "report.md").is_file() and (report / "embedding_map.png").is_file()


def test_evaluate_the_demo_split_includes_retrieval(built_settings, monkeypatch, capsys, tmp_path):
    point_at(built_settings, monkeypatch)
    assert main(["evaluate", "--report", str(tmp_path), "--no-map"]) == 0
    out = capsys.readouterr().out
    assert "retrieval: recall@1" in out
    assert not (tmp_path / "embedding_map.png").exists()


def test_add_user_prints_a_config_entry_with_only_the_hash(tmp_path, monkeypatch, capsys):
    from assistant.core.settings import load_settings
    from assistant.staff.accounts import authenticate

    monkeypatch.setattr("sys.stdin", io.StringIO("a long secret\n"))
    assert main(["add-user", "ana", "--role", "agent", "--password-stdin"]) == 0
    captured = capsys.readouterr()
    assert "a long secret" not in captured.out
    config = tmp_path / "assistant.toml"
    config.write_text(captured.out)
    assert authenticate(load_settings(config), "ana", "a long secret").role == "agent"
    assert "Add the entry above" in captured.err


def test_add_user_refuses_a_short_password(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["add-user", "ana", "--role", "admin", "--password-stdin"]) == 2
    assert "at least 8" in capsys.readouterr().err


def test_add_api_key_shows_the_key_once_and_prints_its_digest(tmp_path, capsys):
    from assistant.core.settings import load_settings
    from assistant.staff.accounts import check_api_key

    assert main(["add-api-key", "helpdesk"]) == 0
    captured = capsys.readouterr()
    key = captured.err.splitlines()[1]
    assert key not in captured.out
    config = tmp_path / "assistant.toml"
    config.write_text(captured.out)
    assert check_api_key(load_settings(config), key).name == "helpdesk"


def test_exported_jsonl_trains_as_it_is(tmp_path, demo_slice, monkeypatch, capsys):
    import csv

    from assistant.core.records import TurnRecord
    from assistant.storage.store import ConversationStore

    database = tmp_path / "log.db"
    store = ConversationStore(database)
    conversation = store.start_conversation()
    with (demo_slice / "intents.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            store.log_turn(
                TurnRecord(
                    conversation,
                    row["text"],
                    "ok",
                    "template",
                    row["intent"],
                    0.9,
                    "why",
                    [],
                    {},
                    1.0,
                    "v1",
                )
            )
    store.log_turn(
        TurnRecord(conversation, "??", "sorry", "handoff", None, 0.1, "why", [], {}, 1.0, "v1")
    )
    store.close()
    monkeypatch.setenv("ASSISTANT_DATABASE_PATH", str(database))
    monkeypatch.setenv("ASSISTANT_EPOCHS", "1")
    exported = tmp_path / "export.jsonl"
    assert main(["export", "--format", "jsonl", "--out", str(exported)]) == 0
    assert "Exported 80 rows; left out: handed off without correction 1" in capsys.readouterr().err
    assert main(["train", "--data", str(exported), "--models-dir", str(tmp_path / "models")]) == 0
    assert "Training on 72 examples, validating on 8" in capsys.readouterr().out


def test_export_without_a_log_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_DATABASE_PATH", str(tmp_path / "none.db"))
    assert main(["export"]) == 2
    assert "no conversation log at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--since", "last week"])


def test_prune_dry_run_lists_and_removes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "index"))
    intent = tmp_path / "models" / "intent"
    for version in ("v1", "v2", "v3"):
        (intent / version).mkdir(parents=True)
        (intent / version / "model.bin").write_bytes(b"0" * 2_000_000)
    make_version_current(intent, "v3")
    assert main(["prune", "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "2 version folders, 4 MB (dry run" in out
    assert len(list(intent.iterdir())) == 4  # three versions and CURRENT
    assert main(["prune", "--keep", "1"]) == 0
    assert sorted(p.name for p in intent.iterdir()) == ["CURRENT", "v3"]


def test_a_user_error_is_one_clean_line_and_exit_2(tmp_path, capsys):
    code = main(["data", "validate", str(tmp_path / "missing")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: ") and error.count("\n") == 1
    assert "Traceback" not in error


def test_bad_settings_are_a_user_error(tmp_path, capsys):
    config = tmp_path / "assistant.toml"
    config.write_text("retrieval_threshold = 7\n", encoding="utf-8")
    assert main(["--config", str(config), "data", "validate"]) == 2
    assert "retrieval_threshold" in capsys.readouterr().err


def test_a_bug_is_not_passed_off_as_a_user_error(monkeypatch):
    import assistant.cli.data

    def broken(args, settings):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(assistant.cli.data, "validate_data", lambda path: broken(None, None))
    with pytest.raises(ZeroDivisionError):
        main(["data", "validate"])

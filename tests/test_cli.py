import io
import json

import pytest

from assistant.cli import main


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

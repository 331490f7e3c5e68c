import csv
import json
import shutil
from pathlib import Path

import gradio as gr
import pytest

from assistant.analytics.metrics import Metrics
from assistant.core.pipeline import Assistant
from assistant.lifecycle.releases import ModelVersions, live_versions, promote, rollback
from assistant.staff.admin_page import (
    ExportFiles,
    build_admin_ui,
    evaluation_summary,
    export_training_data,
    figures_table,
    intent_model_rows,
    load_figures,
    load_versions,
    release_rows,
)
from assistant.storage.store import ConversationStore
from tests.conftest import ADMIN_NAME, AGENT_NAME, copy_of_built, with_settings
from tests.postgres import log_for_test

AS_ADMIN = gr.Request(username=ADMIN_NAME)
OUT_OF_SCOPE = "what is the tallest mountain in africa"


@pytest.fixture
def own_log(staffed, tmp_path) -> Assistant:
    """The staffed assistant writing to a log of its own, so the figures are this test's."""
    return Assistant(
        staffed.settings,
        staffed.classifier,
        staffed.retriever,
        staffed.router.templates,
        ConversationStore(log_for_test(tmp_path / "log.db")),
    )


@pytest.fixture
def four_conversations(own_log) -> list:
    """A question, a request for a person (and a follow-up), the same out-of-scope question
    twice. Returns the first reply of each."""
    shipping = own_log.reply("how much is shipping")
    person = own_log.reply("I want to talk to a person")
    own_log.reply("hello? still there?", person.conversation_id)
    mountain = own_log.reply(OUT_OF_SCOPE)
    again = own_log.reply("What is the tallest mountain in Africa?")
    return [shipping, person, mountain, again]


def test_figures_count_each_conversation_once(own_log, four_conversations):
    table, intents, groups = load_figures(own_log, "", AS_ADMIN)
    # Each reply is the conversation's last but for the person's, whose follow-up the
    # agent has: with the bot and not left at a clarifying question is contained.
    contained = sum(r.status == "bot" and r.route != "clarify" for r in four_conversations)
    handed_off = sum(r.status != "bot" for r in four_conversations)
    assert handed_off == 1
    refused = sum(r.route == "refuse" for r in four_conversations)
    clarified = sum(r.route == "clarify" for r in four_conversations)
    assert "| Conversations | 4 |" in table
    assert f"{contained / 4:.1%} ({contained} of 4)" in table.split("Containment")[1]
    assert f"{handed_off / 4:.1%} ({handed_off} of 4)" in table.split("Handoff rate")[1]
    assert f"| Refusals (out of scope; the bot kept the conversation) | {refused} |" in table
    assert f"| Clarifying questions asked | {clarified} |" in table
    assert "| Handoffs: the customer asked for a person | 1 |" in table
    assert "| Handoffs: not understood several times running | 0 |" in table
    assert "| Reply latency p95 |" in table
    assert list(intents.columns) == ["intent", "turns"]
    assert dict(zip(intents["intent"], intents["turns"], strict=True))["human_agent"] == 1
    assert intents["turns"].sum() == 4  # the follow-up left to the agent has no intent
    assert groups.iloc[0]["question"] == OUT_OF_SCOPE
    assert groups.iloc[0]["times asked"] == 2


def test_the_figures_table_shows_refusals_clarifications_and_handoffs_by_reason():
    metrics = Metrics(
        conversations=10,
        contained=6,
        handed_off=3,
        bot_turns=20,
        fallbacks=5,
        rated_turns=0,
        thumbs_down=0,
        latency_p50_ms=None,
        latency_p95_ms=None,
        abandoned=1,
        refusals=4,
        clarifications=2,
        handoffs={"asked_for_person": 1, "always_human": 1, "misunderstood": 0, "other": 1},
    )
    table = figures_table(metrics)
    assert (
        "| Containment rate (resolved by the bot, polite refusals included) | 60.0% (6 of 10) |"
        in table
    )
    assert (
        "| Left at a clarifying question (no answer from the customer) | 10.0% (1 of 10) |" in table
    )
    assert "| Refusals (out of scope; the bot kept the conversation) | 4 |" in table
    assert "| Clarifying questions asked | 2 |" in table
    assert "| Handoffs: the customer asked for a person | 1 |" in table
    assert "| Handoffs: an intent always handled by a person | 1 |" in table
    assert "| Handoffs: not understood several times running | 0 |" in table
    assert "| Handoffs: other (by an agent, or logged before reasons were) | 1 |" in table
    assert "| Thumbs-down rate (of rated replies) | no data yet |" in table


def test_figures_since_a_day(own_log, four_conversations):
    table, intents, groups = load_figures(own_log, "2999-01-01", AS_ADMIN)
    assert "| Conversations | 0 |" in table
    assert "no data yet" in table
    assert intents.empty and groups.empty
    with pytest.raises(gr.Error, match="not a date like"):
        load_figures(own_log, "yesterday", AS_ADMIN)


def test_only_admins_see_the_figures(own_log):
    with pytest.raises(gr.Error, match="needs the admin role"):
        load_figures(own_log, "", gr.Request(username=AGENT_NAME))
    with pytest.raises(gr.Error, match="not signed in"):
        load_versions(own_log, gr.Request(username=None))


@pytest.fixture
def released(staffed, built_settings, tmp_path):
    """A copy of the built models with a second intent version promoted by a retrain, and a
    training run's folder beside the versions."""
    settings = copy_of_built(built_settings, tmp_path, users=staffed.settings.users)
    first = live_versions(settings)
    second = ModelVersions(first.intent + "-b", first.index, first.generator)
    shutil.copytree(
        settings.intent_models_dir / first.intent, settings.intent_models_dir / second.intent
    )
    (settings.intent_models_dir / "runs" / "checkpoint-1").mkdir(parents=True)
    evaluation = {
        "held_out": 20,
        "candidate": {"accuracy": 0.95, "macro_f1": 0.94},
        "replaced": {"accuracy": 0.9, "macro_f1": 0.89},
        "log_rows": 12,
    }
    promote(settings, second, evaluation, "retrain")
    return settings, first, second


def test_releases_with_their_evaluation_and_which_is_live(released):
    settings, first, second = released
    rows = release_rows(settings)
    assert list(rows["state"]) == ["live", "earlier"]
    assert list(rows["intent"]) == [second.intent, first.intent]
    newest = rows.iloc[0]
    assert newest["how"] == "retrain"
    assert "held-out accuracy 0.950 (was 0.900)" in newest["evaluation"]
    assert "held-out macro-f1 0.940 (was 0.890)" in newest["evaluation"]
    assert "on 20 examples" in newest["evaluation"]
    assert "log rows 12" in newest["evaluation"]
    assert rows.iloc[1]["evaluation"] == "not evaluated (built outside retraining)"

    rollback(settings)
    rows = release_rows(settings)
    assert set(zip(rows["state"], rows["intent"], strict=True)) == {
        ("rolled back", second.intent),
        ("live", first.intent),
    }


def test_intent_model_versions_on_disk_skip_other_folders(released):
    settings, first, second = released
    rows = intent_model_rows(settings)
    assert list(rows["version"]) == [second.intent, first.intent]
    assert list(rows["live"]) == ["live", ""]
    metadata = settings.intent_models_dir / first.intent / "classifier.json"
    expected = f"{json.loads(metadata.read_text())['metrics']['test']['accuracy']:.3f}"
    assert rows.iloc[1]["test accuracy"] == expected
    assert rows.iloc[1]["examples (train/validation/test)"].count("/") == 2


def test_the_versions_view_names_what_serves(staffed, released):
    settings, *_ = released
    viewer = with_settings(staffed, settings)  # staffed may have switched to the live release
    serving, releases, models = load_versions(viewer, AS_ADMIN)
    assert serving.startswith(f"Serving: `{viewer.model_version}`")
    assert len(releases) == 2 and len(models) == 2


def test_evaluation_figures_of_any_shape_are_shown():
    assert evaluation_summary(None) == "not evaluated (built outside retraining)"
    assert evaluation_summary({"note": "manual"}) == "note manual"


@pytest.fixture
def files():
    exports = ExportFiles()
    yield exports
    exports.close()


@pytest.mark.parametrize(
    ("format_name", "suffix"), [("jsonl", ".jsonl"), ("csv", ".csv"), ("rasa", ".yml")]
)
def test_the_export_writes_training_data_to_download(
    own_log, four_conversations, files, format_name, suffix
):
    path, summary = export_training_data(own_log, files, format_name, "", AS_ADMIN)
    path = Path(path)
    assert path.suffix == suffix and path.parent == files.folder
    text = path.read_text(encoding="utf-8")
    assert summary.startswith("Exported ")
    if format_name == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert {"text", "intent", "answer"} <= rows[0].keys()
        assert "how much is shipping" in [row["text"] for row in rows]
    elif format_name == "csv":
        assert csv.DictReader(text.splitlines()).fieldnames[:2] == ["text", "intent"]
    else:
        assert text.startswith('version: "3.1"\nnlu:\n')


def test_bad_export_requests_get_clear_messages(own_log, files):
    with pytest.raises(gr.Error, match="Pick a format"):
        export_training_data(own_log, files, "xlsx", "", AS_ADMIN)
    with pytest.raises(gr.Error, match="not a date like"):
        export_training_data(own_log, files, "jsonl", "31/01/2025", AS_ADMIN)
    with pytest.raises(gr.Error, match="needs the admin role"):
        export_training_data(own_log, files, "jsonl", "", gr.Request(username=AGENT_NAME))
    assert list(files.folder.iterdir()) == []


def test_export_files_are_cleaned_up(own_log):
    files = ExportFiles(keep_seconds=0)
    first, _ = export_training_data(own_log, files, "jsonl", "", AS_ADMIN)
    second, _ = export_training_data(own_log, files, "csv", "", AS_ADMIN)
    assert not Path(first).exists() and Path(second).exists()
    files.close()
    assert not files.folder.exists()


def test_the_page_builds(staffed):
    assert isinstance(build_admin_ui(staffed), gr.Blocks)

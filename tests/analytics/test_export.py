import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from assistant.analytics.export import (
    COLUMNS,
    Export,
    ExportFormat,
    LeftOut,
    export_log,
    normalised,
    render,
    write_export,
)
from assistant.core.records import TurnRecord
from assistant.datasets.loading import load_intent_examples
from assistant.storage.store import ConversationStore
from tests.postgres import log_for_test


def turn(store, conversation, text, intent="order_status", confidence=0.9, route="template"):
    return store.log_turn(
        TurnRecord(
            conversation,
            text,
            f"bot reply to {text}",
            route,
            intent,
            confidence,
            "why",
            [],
            {},
            5.0,
            "v1",
        )
    )


@pytest.fixture
def store(tmp_path):
    """A log with one turn for each way a turn can end up in, or out of, the export."""
    opened = ConversationStore(log_for_test(tmp_path / "log.db"))
    c = opened.start_conversation()
    turn(opened, c, "Where is my order?")
    turn(opened, c, "where is my  ORDER")  # a duplicate of the first
    turn(opened, c, "hmm, the thing", confidence=0.3)
    fixed = turn(opened, c, "my parcel never came", confidence=0.3)
    opened.correct_intent(fixed, "ana", "missing_package")
    disliked = turn(opened, c, "shipping to Norway?", intent="shipping_cost")
    opened.add_feedback(disliked, c, -1)
    disliked_fixed = turn(opened, c, "do you ship abroad", intent="shipping_cost")
    opened.add_feedback(disliked_fixed, c, -1)
    opened.correct_intent(disliked_fixed, "ana", "international_shipping")
    handed = opened.start_conversation()
    turn(opened, handed, "I can't find it", intent="order_status", route="handoff")
    turn(opened, handed, "tell me a joke", intent="out_of_scope", route="refuse")
    turn(opened, handed, "the thing", intent="order_status", confidence=0.8, route="clarify")
    clarified = turn(opened, handed, "the thing I bought", confidence=0.8, route="clarify")
    opened.correct_intent(clarified, "ana", "missing_package")
    asked = turn(
        opened,
        handed,
        "I was charged twice, mail me at jo@example.com",
        intent=None,
        confidence=0.0,
        route="agent",
    )
    opened.agent_reply(handed, "ana", "Sorry! I have refunded the second charge.")
    turn(opened, handed, "thanks", intent=None, confidence=0.0, route="agent")
    opened.correct_intent(asked, "ana", "payment_failed")
    yield opened
    opened.close()


def test_rows_carry_the_final_intent_and_answer_and_what_was_left_out(store):
    export = export_log(store, min_confidence=0.6)
    rows = {row["text"]: row for row in export.rows}
    assert list(rows) == [
        "Where is my order?",
        "my parcel never came",
        "do you ship abroad",
        "the thing I bought",
        "I was charged twice, mail me at [EMAIL]",
    ]
    assert rows["Where is my order?"]["intent_source"] == "model"
    assert rows["my parcel never came"]["intent"] == "missing_package"
    assert rows["my parcel never came"]["intent_source"] == "agent"
    assert rows["do you ship abroad"]["feedback"] == "down"
    charged = rows["I was charged twice, mail me at [EMAIL]"]
    assert charged["intent"] == "payment_failed"
    # No one approved the agent's answer for reuse: it is not exported as one.
    assert charged["answer_source"] == "bot" and "refunded" not in charged["answer"]
    assert charged["route"] == "agent"
    # A clarifying question is not an example of its top intent, unless an agent said so.
    clarified = rows["the thing I bought"]
    assert (clarified["intent"], clarified["intent_source"]) == ("missing_package", "agent")
    assert clarified["route"] == "clarify"
    assert export.left_out == {
        LeftOut.DUPLICATE: 1,
        LeftOut.LOW_CONFIDENCE: 1,
        LeftOut.THUMBS_DOWN: 1,
        LeftOut.HANDED_OFF: 1,
        LeftOut.REFUSED: 1,
        LeftOut.CLARIFIED: 1,
        LeftOut.NO_INTENT: 1,
    }
    assert "5 rows; left out:" in export.summary()


def test_since_keeps_only_later_turns(store):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert export_log(store, since=tomorrow).rows == []
    assert len(export_log(store, since=yesterday).rows) == 5


def test_normalisation_for_duplicates():
    assert normalised("  Where is my ORDER?! ") == normalised("where is  my order")


def test_jsonl_and_csv_load_as_training_data(store, tmp_path):
    export = export_log(store)
    for export_format in (ExportFormat.JSONL, ExportFormat.CSV):
        path = tmp_path / f"train.{export_format.value}"
        write_export(export, export_format, path)
        examples = load_intent_examples(path)
        assert [(e.text, e.intent) for e in examples] == [
            (row["text"], row["intent"]) for row in export.rows
        ]
    with (tmp_path / "train.csv").open(encoding="utf-8") as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == COLUMNS
    first = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert set(first) == set(COLUMNS)


def test_rasa_nlu_yaml(store):
    yaml = pytest.importorskip("yaml")
    text = render(export_log(store), ExportFormat.RASA)
    assert text.startswith('version: "3.1"\nnlu:\n')
    document = yaml.safe_load(text)
    examples = {item["intent"]: item["examples"] for item in document["nlu"]}
    assert sorted(examples) == [
        "international_shipping",
        "missing_package",
        "order_status",
        "payment_failed",
    ]
    assert examples["order_status"] == "- Where is my order?\n"
    assert examples["payment_failed"] == "- I was charged twice, mail me at [EMAIL]\n"


PLANTED = ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"]


def test_the_csv_neutralises_formulas_in_every_text_cell_and_the_jsonl_keeps_them():
    rows = [
        {column: planted for column in COLUMNS} | {"turn_id": number}
        for number, planted in enumerate(PLANTED)
    ]
    export = Export(rows)
    cells = list(csv.DictReader(io.StringIO(render(export, ExportFormat.CSV), newline="")))
    for planted, row in zip(PLANTED, cells, strict=True):
        texts = [row[column] for column in COLUMNS if column != "turn_id"]
        assert texts == ["'" + planted] * len(texts)
    raw = [json.loads(line) for line in render(export, ExportFormat.JSONL).splitlines()]
    assert [row["text"] for row in raw] == PLANTED
    assert PLANTED[0] in render(export, ExportFormat.RASA)


def test_an_agent_answer_is_exported_for_reuse_only_as_the_pair_a_person_approved(store):
    [line] = [m for m in store.answers_to_review() if "refunded" in m["text"]]
    store.review_answer(line["id"], "ana", True, "Charged twice?", "We refund a double charge.")
    charged = next(row for row in export_log(store).rows if row["intent"] == "payment_failed")
    assert (charged["question"], charged["answer"], charged["answer_source"]) == (
        "Charged twice?",
        "We refund a double charge.",
        "approved",
    )
    store.review_answer(line["id"], "bo", False)  # the latest review counts
    charged = next(row for row in export_log(store).rows if row["intent"] == "payment_failed")
    assert charged["answer_source"] == "bot"

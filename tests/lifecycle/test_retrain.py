from assistant.analytics.export import ExportFormat, export_log, write_export
from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import QAPair, load_dataset
from assistant.lifecycle.releases import live_versions
from assistant.lifecycle.retrain import (
    HELD_OUT_ONE_IN,
    RETRIEVAL_FIGURE,
    LogRow,
    held_out,
    merge,
    not_worse,
    read_log_file,
    score,
)
from tests.fakes import fake_settings

LOGGED = [
    # (customer text, final intent, corrected by an agent, an agent's answer approved for reuse)
    ("any news on the parcel I ordered last Tuesday", "order_status", True, True),
    ("what do you charge to post a rug to Lisbon", "shipping_cost", True, True),
    ("can I send back the lamp, it flickers", "return_policy", True, False),
    ("morning all", "greeting", False, False),
    ("ANY NEWS on the parcel I ordered last Tuesday?", "order_status", False, False),
    ("where do I renew my gym membership", "gym_membership", True, True),
]


def rows() -> list[LogRow]:
    return [
        LogRow(text, intent, f"Agent answer about {intent}.", corrected, by_agent)
        for text, intent, corrected, by_agent in LOGGED
    ]


def test_the_held_out_share_is_fixed_by_the_text():
    texts = [f"question number {n} about my order" for n in range(2000)]
    share = sum(held_out(text) for text in texts) / len(texts)
    assert abs(share - 1 / HELD_OUT_ONE_IN) < 0.03
    assert [held_out(t) for t in texts[:50]] == [held_out(t) for t in texts[:50]]
    assert held_out("Where is MY order?") == held_out("where is my order")


def test_merge_adds_new_log_rows_to_training_or_the_held_out_set(demo_slice, built_settings):
    dataset = load_dataset(demo_slice)
    base = merge(dataset, built_settings, [])
    merged = merge(dataset, built_settings, rows())
    counts = merged.counts
    assert counts["unknown_intent"] == 1  # gym_membership is not an intent here
    assert counts["log_rows"] == 4  # the second "any news..." is the same text
    assert counts["corrected"] == 3
    assert counts["trained_on"] + counts["held_out_from_log"] == 4
    assert len(merged.splits.train) == len(base.splits.train) + counts["trained_on"]
    assert len(merged.splits.test) == len(base.splits.test) + counts["held_out_from_log"]
    assert merged.splits.validation == base.splits.validation
    trained = {e.text for e in merged.splits.train}
    tested = {e.text for e in merged.splits.test}
    assert not trained & tested
    added = {pair.question for pair in merged.qa_pairs} - {p.question for p in dataset.qa_pairs}
    by_agent = {row.text for row in rows()[:2] if not held_out(row.text)}
    assert added == by_agent
    assert counts["agent_answers_added"] == len(by_agent)
    assert merged.base_intent_checksum == base.base_intent_checksum


def test_an_exported_file_reads_back_as_log_rows(assistant, tmp_path):
    reply = assistant.reply("what do you charge to post a rug to Lisbon")
    assistant.store.correct_intent(reply.turn_id, "ana", "shipping_cost")
    line = assistant.store.agent_reply(reply.conversation_id, "ana", "It is 12 euros to Portugal.")
    assistant.store.review_answer(line, "ana", True, "How much is shipping to Portugal?")
    export = export_log(assistant.store)
    path = tmp_path / "log.jsonl"
    write_export(export, ExportFormat.JSONL, path)
    read = read_log_file(path)
    assert len(read) == len(export.rows)
    ours = next(row for row in read if row.text == "what do you charge to post a rug to Lisbon")
    assert ours == LogRow(
        "what do you charge to post a rug to Lisbon",
        "shipping_cost",
        "It is 12 euros to Portugal.",
        corrected=True,
        approved=True,
        question="How much is shipping to Portugal?",
    )


def test_a_candidate_is_promoted_unless_its_intent_model_or_index_does_worse():
    live = {"accuracy": 0.9, RETRIEVAL_FIGURE: 0.8}
    assert not_worse(live, live)
    assert not_worse({"accuracy": 0.91, RETRIEVAL_FIGURE: 0.85}, live)
    assert not not_worse({"accuracy": 0.89, RETRIEVAL_FIGURE: 0.9}, live)
    assert not not_worse({"accuracy": 0.95, RETRIEVAL_FIGURE: 0.79}, live)
    assert not_worse({"accuracy": 0.9, RETRIEVAL_FIGURE: None}, live)  # nothing to compare


def test_a_release_is_scored_on_intents_and_retrieval(built_settings):
    dataset = load_dataset(built_settings.data_dir)
    held_out_set = dataset_splits(dataset, built_settings).test
    figures = score(built_settings, live_versions(built_settings), held_out_set)
    assert set(figures) == {"accuracy", "macro_f1", RETRIEVAL_FIGURE}
    assert 0.5 < figures["accuracy"] <= 1 and 0.5 < figures[RETRIEVAL_FIGURE] <= 1


def test_only_an_agent_answer_a_person_approved_joins_the_index(demo_slice):
    settings = fake_settings(demo_slice)
    dataset = load_dataset(demo_slice)
    said = "what do you charge to post a rug to Lisbon, I'm Jo Bloggs at 4 Elm Road"
    unapproved = LogRow(said, "shipping_cost", "Jo, it is 12 euros to 4 Elm Road.", True, False)
    approved = LogRow(
        said, "shipping_cost", "It is 12 euros to Portugal.", True, True, "Shipping to Portugal?"
    )
    assert merge(dataset, settings, [unapproved]).qa_pairs == dataset.qa_pairs
    merged = merge(dataset, settings, [approved])
    assert not held_out(said)  # trained on, so its pair is indexed
    assert merged.qa_pairs[-1] == QAPair(
        "Shipping to Portugal?", "It is 12 euros to Portugal.", "shipping_cost"
    )
    assert all("Elm" not in pair.question + pair.answer for pair in merged.qa_pairs)

import json
from collections import Counter
from pathlib import Path

import pytest

from assistant.core.errors import DataError
from assistant.datasets.loading import (
    IntentExample,
    load_dataset,
    load_intent_examples,
    split_examples,
)
from tests.conftest import DEMO_DATA, SHARED_DATASETS


def test_demo_data_has_what_the_product_promises():
    dataset = load_dataset(DEMO_DATA)
    per_intent = Counter(example.intent for example in dataset.examples)
    assert len(per_intent) >= 30
    assert min(per_intent.values()) >= 40
    assert len(dataset.qa_pairs) >= 400
    assert len(dataset.out_of_scope) >= 150
    assert {pair.intent for pair in dataset.qa_pairs} <= set(per_intent)
    assert dataset.warnings == []


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            "text,intent\nhello,greeting\nwhere is it\nbye,thanks\n",
            r"intents.csv, line 3: column 'intent' is missing",
        ),
        ("text,intent\nhi, there,greeting\n", "line 2: more fields than the header"),
        ("sentence,label\nhello,greeting\n", "lacks column"),
    ],
    ids=["missing-field", "extra-field", "wrong-header"],
)
def test_bad_csv_rows_are_reported_with_their_line(tmp_path, content, error):
    path = tmp_path / "intents.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=error):
        load_intent_examples(path)


def test_non_utf8_file_is_reported(tmp_path):
    path = tmp_path / "intents.csv"
    path.write_bytes("text,intent\ncaf\xe9,greeting\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_intent_examples(path)


def test_jsonl_is_read_and_bad_lines_named(tmp_path):
    path = tmp_path / "intents.jsonl"
    path.write_text(
        '{"text": "hi", "intent": "greeting"}\n\n{"text": "bye", "intent": "thanks"}\n',
        encoding="utf-8",
    )
    assert load_intent_examples(path) == [
        IntentExample("hi", "greeting"),
        IntentExample("bye", "thanks"),
    ]
    path.write_text('{"text": "hi", "intent": "greeting"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: invalid JSON"):
        load_intent_examples(path)


def test_custom_column_names(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("utterance,label\nhi,greeting\n", encoding="utf-8")
    assert load_intent_examples(path, "utterance", "label") == [IntentExample("hi", "greeting")]


def test_missing_folder_and_single_example_intents_are_refused(tmp_path, demo_slice):
    with pytest.raises(DataError, match="dataset folder not found"):
        load_dataset(tmp_path / "nowhere")
    with (demo_slice / "intents.csv").open("a", encoding="utf-8") as file:
        file.write("a lonely message,lonely_intent\n")
    with pytest.raises(DataError, match="at least 2 examples"):
        load_dataset(demo_slice)


def test_split_is_stratified_and_reproducible():
    examples = [IntentExample(f"{intent} {i}", intent) for intent in "abcd" for i in range(10)]
    train, validation = split_examples(examples, 0.2, seed=3)
    assert Counter(e.intent for e in validation) == {"a": 2, "b": 2, "c": 2, "d": 2}
    assert split_examples(examples, 0.2, seed=3) == (train, validation)


def _public_sentences() -> set[str]:
    import csv

    sentences = set()
    for name in ("train.csv", "test.csv"):
        with (SHARED_DATASETS / "banking77" / name).open(encoding="utf-8") as file:
            sentences |= {row["text"] for row in csv.DictReader(file)}
    clinc = json.loads((SHARED_DATASETS / "clinc150" / "data_full.json").read_text())
    sentences |= {item[0] for items in clinc.values() for item in items}
    with (SHARED_DATASETS / "bitext_customer_support" / "train.csv").open(encoding="utf-8") as file:
        for row in csv.DictReader(file):
            sentences |= {row["instruction"], row["response"]}
    return {sentence.strip().lower() for sentence in sentences}


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")
def test_demo_data_shares_no_sentence_with_public_datasets():
    dataset = load_dataset(DEMO_DATA)
    ours = {e.text for e in dataset.examples} | set(dataset.out_of_scope)
    ours |= {p.question for p in dataset.qa_pairs} | {p.answer for p in dataset.qa_pairs}
    overlap = {text.strip().lower() for text in ours} & _public_sentences()
    assert overlap == set()


def test_data_readme_documents_every_file():
    readme = (DEMO_DATA / "README.md").read_text(encoding="utf-8")
    for name in ("intents.csv", "out_of_scope.csv", "qa_pairs.csv", "templates.json"):
        assert name in readme
    assert Path(DEMO_DATA / "templates.json").is_file()

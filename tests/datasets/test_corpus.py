import json
from collections import Counter

import pytest

from assistant.core.errors import DataError
from assistant.core.settings import Settings
from assistant.datasets.corpus import IntentFiles, dataset_splits, file_splits
from assistant.datasets.loading import load_dataset


def _write_csv(path, rows, header=("utterance", "label")):
    lines = [",".join(header)] + [f"{text},{intent}" for text, intent in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


ROWS = [(f"question number {i} about {topic}", topic) for topic in ("a", "b") for i in range(10)]


def test_demo_dataset_is_split_70_15_15_without_overlap(demo_slice):
    settings = Settings(data_dir=demo_slice, validation_fraction=0.15)
    splits = dataset_splits(load_dataset(demo_slice), settings)
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert total == 96  # 80 intent examples + 16 out-of-scope
    assert abs(len(splits.test) - 0.15 * total) <= 1
    texts = [set(e.text for e in part) for part in (splits.train, splits.validation, splits.test)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert "out_of_scope" in {e.intent for e in splits.test}


def test_any_csv_with_named_columns_gets_a_stratified_validation_split(tmp_path):
    files = IntentFiles(
        _write_csv(tmp_path / "t.csv", ROWS), text_column="utterance", intent_column="label"
    )
    splits = file_splits(files, Settings(validation_fraction=0.2))
    assert Counter(e.intent for e in splits.validation) == {"a": 2, "b": 2}
    assert len(splits.train) == 16
    assert splits.test == []


def test_validation_and_test_files_are_used_as_given(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"q": t, "y": i}) for t, i in ROWS), encoding="utf-8")
    validation = _write_csv(tmp_path / "val.csv", ROWS[:3], header=("q", "y"))
    test = _write_csv(tmp_path / "test.csv", ROWS[-2:], header=("q", "y"))
    splits = file_splits(IntentFiles(train, validation, test, "q", "y"), Settings())
    assert len(splits.train) == 20
    assert [e.text for e in splits.validation] == [t for t, _ in ROWS[:3]]
    assert len(splits.test) == 2


def test_wrong_column_name_names_the_file_and_columns(tmp_path):
    files = IntentFiles(_write_csv(tmp_path / "t.csv", ROWS), text_column="text")
    with pytest.raises(DataError, match=r"t.csv, line 1: header .* lacks column"):
        file_splits(files, Settings())

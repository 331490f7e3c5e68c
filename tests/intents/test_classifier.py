import json
import shutil

import numpy as np
import pytest

from assistant.core.errors import ArtifactError
from assistant.intents.classifier import (
    METADATA_FILE,
    BertIntentClassifier,
    checkpoint_metrics,
    intent_model_path,
)
from assistant.intents.network import HEAD_FILE
from assistant.lifecycle.versions import CURRENT_FILE
from tests.conftest import SLICE_INTENTS


@pytest.fixture(scope="module")
def classifier(built_settings):
    return BertIntentClassifier.load(built_settings.intent_models_dir)


def _copy_live_version(built_settings, target):
    shutil.copytree(intent_model_path(built_settings.intent_models_dir), target / "v1")
    (target / CURRENT_FILE).write_text("v1\n")
    return target / "v1"


def test_model_labels_thresholds_and_metrics_are_saved_together(built_settings):
    path = intent_model_path(built_settings.intent_models_dir)
    metadata = json.loads((path / METADATA_FILE).read_text())
    assert set(metadata["labels"]) == {*SLICE_INTENTS, "out_of_scope"}
    assert (path / "config.json").is_file()
    assert (path / HEAD_FILE).is_file()
    test = metadata["metrics"]["test"]
    assert 0.0 <= test["macro_f1"] <= 1.0
    assert test["accuracy"] >= 0.6  # well above chance (1/6) on held-out examples
    assert metadata["temperature"] > 0
    assert 0 <= metadata["rejection"]["threshold"] <= 1
    assert metadata["recipe"]["label_smoothing"] == built_settings.label_smoothing


def test_predictions_are_ranked_probabilities(classifier):
    [scores] = classifier.predict(["hello! is anybody there?"], top_k=3)
    assert len(scores) == 3
    assert scores[0].probability >= scores[1].probability >= scores[2].probability
    full = classifier.probabilities(["hello! is anybody there?", "how much does delivery cost"])
    assert full.shape == (2, len(classifier.labels))
    assert np.allclose(full.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("runtime", ["fp32", "torch"])
def test_batched_and_single_predictions_agree(built_settings, runtime):
    classifier = BertIntentClassifier.load(built_settings.intent_models_dir, "cpu", runtime=runtime)
    texts = ["where is my parcel PP-123456", "can I talk to a person", "how much is shipping", "hi"]
    batched = classifier.probabilities(texts)
    single = np.vstack([classifier.probabilities([text]) for text in texts])
    assert np.allclose(batched, single, atol=1e-4)


def test_a_batch_of_mixed_lengths_scores_each_message_as_alone(built_settings):
    """Long and short messages are padded in separate groups; no message's scores change."""
    classifier = BertIntentClassifier.load(built_settings.intent_models_dir, "cpu", runtime="fp32")
    long = "my parcel has not arrived and I would like to know where it is " * 12
    texts = ["hi", long, "where is my parcel PP-123456", *(f"order {n} is late" for n in range(40))]
    logits, embeddings = classifier.scores(texts)
    for row in (0, 1, 2, len(texts) - 1):
        alone_logits, alone_embeddings = classifier.scores([texts[row]])
        assert np.allclose(logits[row], alone_logits[0], atol=1e-4)
        assert np.allclose(embeddings[row], alone_embeddings[0], atol=1e-4)


def test_int8_predictions_depend_little_on_their_batch(built_settings):
    """Dynamic int8 scales activations by the whole batch: a message's scores move a little
    with the messages batched with it, never its top intent here."""
    classifier = BertIntentClassifier.load(built_settings.intent_models_dir, "cpu", runtime="int8")
    texts = ["where is my parcel PP-123456", "can I talk to a person", "how much is shipping", "hi"]
    batched = classifier.probabilities(texts)
    single = np.vstack([classifier.probabilities([text]) for text in texts])
    assert (batched.argmax(1) == single.argmax(1)).all()
    assert np.abs(batched - single).max() < 0.15


def test_embeddings_are_unit_length(classifier):
    vectors = classifier.embeddings(["where is my parcel", "hello"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_int8_model_agrees_with_the_full_precision_one(built_settings, classifier):
    directory = built_settings.intent_models_dir
    quantized = BertIntentClassifier.load(directory, "cpu", runtime="int8")
    classifier = BertIntentClassifier.load(directory, "cpu", runtime="torch")
    texts = ["where is my parcel PP-123456", "can I talk to a person", "how much is shipping"]
    assert quantized.runtime == "onnx int8 (CPUExecutionProvider)"
    agree = classifier.probabilities(texts).argmax(1) == quantized.probabilities(texts).argmax(1)
    assert agree.all()


def test_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(ArtifactError, match="assistant train"):
        BertIntentClassifier.load(tmp_path)


def test_label_count_mismatch_is_refused(built_settings, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    metadata = json.loads((version / METADATA_FILE).read_text())
    metadata["labels"] = metadata["labels"][:-1]
    (version / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="outputs but"):
        BertIntentClassifier.load(tmp_path)


def test_model_saved_in_an_older_format_is_refused(built_settings, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    metadata = json.loads((version / METADATA_FILE).read_text())
    metadata["format"] = 1
    (version / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="another version"):
        BertIntentClassifier.load(tmp_path)


def test_missing_head_weights_are_refused(built_settings, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    (version / HEAD_FILE).unlink()
    with pytest.raises(ArtifactError, match="cannot be loaded"):  # PyTorch needs the head
        BertIntentClassifier.load(tmp_path, runtime="torch")


def test_corrupt_metadata_is_refused(built_settings, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    (version / METADATA_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        BertIntentClassifier.load(tmp_path)


def test_an_epoch_is_chosen_by_accuracy_and_ties_by_the_lower_loss():
    targets = np.array([0, 1, 1])
    sure = np.array([[4.0, 0.0], [0.0, 4.0], [3.0, 0.0]])  # 2 of 3 right, confidently
    unsure = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.0]])  # the same 2 right, less sure
    better = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.5]])  # all 3 right
    scores = {
        name: checkpoint_metrics(logits, targets)
        for name, logits in {"sure": sure, "unsure": unsure, "better": better}.items()
    }
    assert scores["sure"]["accuracy"] == scores["unsure"]["accuracy"] == pytest.approx(2 / 3)
    # Equal accuracy: the lower cross-entropy wins (the confident mistake costs more here).
    assert scores["unsure"]["selection"] > scores["sure"]["selection"]
    assert scores["better"]["selection"] > scores["unsure"]["selection"]
    assert scores["better"]["selection"] == pytest.approx(1.0)

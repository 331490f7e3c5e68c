import json

import numpy as np
import pytest

from assistant.files import ArtifactError
from assistant.intents import (
    CURRENT_FILE,
    METADATA_FILE,
    IntentClassifier,
    expected_calibration_error,
    fit_temperature,
    softmax,
    version_path,
)

from .conftest import SLICE_INTENTS


@pytest.fixture(scope="module")
def classifier(built_settings):
    return IntentClassifier.load(built_settings.intent_models_dir)


def test_model_labels_and_metrics_are_saved_together(built_settings):
    path = version_path(built_settings.intent_models_dir)
    metadata = json.loads((path / METADATA_FILE).read_text())
    assert set(metadata["labels"]) == {*SLICE_INTENTS, "out_of_scope"}
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()
    test = metadata["metrics"]["test"]
    assert 0.0 <= test["macro_f1"] <= 1.0
    assert test["accuracy"] >= 0.6  # well above chance (1/6) on held-out examples
    assert metadata["temperature"] > 0


def test_predictions_are_ranked_probabilities(classifier):
    [scores] = classifier.predict(["hello! is anybody there?"], top_k=3)
    assert len(scores) == 3
    assert scores[0].probability >= scores[1].probability >= scores[2].probability
    full = classifier.probabilities(["hello! is anybody there?", "how much does delivery cost"])
    assert full.shape == (2, len(classifier.labels))
    assert np.allclose(full.sum(axis=1), 1.0, atol=1e-5)


def test_batched_and_single_predictions_agree(classifier):
    texts = ["where is my parcel PP-123456", "can I talk to a person", "how much is shipping"]
    batched = classifier.probabilities(texts)
    single = np.vstack([classifier.probabilities([text]) for text in texts])
    assert np.allclose(batched, single, atol=1e-4)


def test_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(ArtifactError, match="assistant train"):
        IntentClassifier.load(tmp_path)


def test_label_count_mismatch_is_refused(built_settings, tmp_path):
    import shutil

    source = version_path(built_settings.intent_models_dir)
    shutil.copytree(source, tmp_path / "v1")
    (tmp_path / CURRENT_FILE).write_text("v1\n")
    metadata = json.loads((tmp_path / "v1" / METADATA_FILE).read_text())
    metadata["labels"] = metadata["labels"][:-1]
    (tmp_path / "v1" / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="outputs but"):
        IntentClassifier.load(tmp_path)


def test_corrupt_metadata_is_refused(built_settings, tmp_path):
    import shutil

    shutil.copytree(version_path(built_settings.intent_models_dir), tmp_path / "v1")
    (tmp_path / CURRENT_FILE).write_text("v1\n")
    (tmp_path / "v1" / METADATA_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        IntentClassifier.load(tmp_path)


def test_temperature_scaling_reduces_calibration_error():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, size=2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), targets] += 1.0  # right about 60% of the time...
    overconfident = logits * 6  # ...but sure of itself nearly always
    before = expected_calibration_error(softmax(overconfident), targets)
    temperature = fit_temperature(overconfident, targets)
    after = expected_calibration_error(softmax(overconfident / temperature), targets)
    assert temperature > 3
    assert after < before / 3


def test_calibration_error_of_a_perfect_classifier_is_zero():
    targets = np.array([0, 1, 2])
    assert expected_calibration_error(np.eye(3), targets) == 0.0


def test_unreachable_base_model_is_a_clear_error(built_settings, monkeypatch):
    from assistant.data import IntentExample
    from assistant.intents import train_intent_classifier

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = built_settings.model_copy(update={"intent_base_model": "no-such-org/no-such-model"})
    examples = [IntentExample("hi", "greeting"), IntentExample("bye", "thanks")]
    with pytest.raises(ArtifactError, match=r"cannot load model.*HF_HUB_OFFLINE=0"):
        train_intent_classifier(examples, examples, settings, "checksum")


def test_training_is_reproducible_with_a_seed(built_settings, tmp_path):
    from assistant.build import labelled_examples
    from assistant.data import load_dataset, split_examples
    from assistant.intents import train_intent_classifier

    examples = labelled_examples(load_dataset(built_settings.data_dir), built_settings)
    train, validation = split_examples(examples, 0.3, seed=1)
    probabilities = []
    for run in ("a", "b"):
        settings = built_settings.model_copy(
            update={"models_dir": tmp_path / run, "epochs": 2, "seed": 5}
        )
        train_intent_classifier(train, validation, settings, "checksum")
        loaded = IntentClassifier.load(settings.intent_models_dir)
        probabilities.append(loaded.probabilities([e.text for e in validation]))
    assert np.allclose(probabilities[0], probabilities[1], atol=1e-5)

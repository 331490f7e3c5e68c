import json
import shutil

import numpy as np
import pytest

from assistant.core.errors import ArtifactError
from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import load_dataset
from assistant.intents.classifier import METADATA_FILE, BertIntentClassifier, intent_model_path
from assistant.intents.onnx_model import export_forms
from assistant.lifecycle.versions import CURRENT_FILE

TEXTS = [
    "where is my parcel PP-123456",
    "can I talk to a person",
    "how much is shipping to France",
    "hi",
    "what is your return policy for shoes I bought last week",
]


@pytest.fixture(scope="module")
def forms(built_settings):
    directory = built_settings.intent_models_dir
    return {
        runtime: BertIntentClassifier.load(directory, "cpu", runtime=runtime)
        for runtime in ("auto", "fp32", "int8", "torch")
    }


def _copy_live_version(built_settings, target):
    shutil.copytree(intent_model_path(built_settings.intent_models_dir), target / "v1")
    (target / CURRENT_FILE).write_text("v1\n")
    return target / "v1"


def test_training_saves_both_forms_the_decision_and_both_figures(built_settings):
    path = intent_model_path(built_settings.intent_models_dir)
    record = json.loads((path / METADATA_FILE).read_text())["onnx"]
    assert {entry["file"] for entry in record["files"].values()} == {
        "model.onnx",
        "model.int8.onnx",
    }
    assert all((path / entry["file"]).is_file() for entry in record["files"].values())
    gate = record["gate"]
    assert gate["tolerance"] == built_settings.int8_accuracy_tolerance
    assert 0 <= gate["fp32"] <= 1 and 0 <= gate["int8"] <= 1
    assert gate["fp32"] == pytest.approx(gate["torch_fp32"], abs=1e-9)
    assert record["chosen"] == (
        "int8" if gate["int8"] >= gate["fp32"] - gate["tolerance"] else "fp32"
    )
    assert record["agreement"]["max_logit_difference_fp32_vs_torch"] < 1e-3
    assert set(record["test"]) == {"examples", "fp32", "int8"}


def test_serving_uses_the_chosen_onnx_form_by_default(built_settings, forms):
    record = forms["auto"].metadata["onnx"]
    assert forms["auto"].runtime == f"onnx {record['chosen']} (CPUExecutionProvider)"
    assert forms["torch"].runtime == "torch (cpu)"


def test_fp32_onnx_gives_the_probabilities_and_embeddings_of_pytorch(forms):
    torch_probabilities = forms["torch"].probabilities(TEXTS)
    onnx_probabilities = forms["fp32"].probabilities(TEXTS)
    assert (onnx_probabilities.argmax(1) == torch_probabilities.argmax(1)).all()
    assert np.allclose(onnx_probabilities, torch_probabilities, atol=1e-4)
    assert np.allclose(forms["fp32"].embeddings(TEXTS), forms["torch"].embeddings(TEXTS), atol=1e-4)


def test_int8_onnx_keeps_the_top_intent_and_near_probabilities(forms):
    torch_probabilities = forms["torch"].probabilities(TEXTS)
    int8_probabilities = forms["int8"].probabilities(TEXTS)
    assert (int8_probabilities.argmax(1) == torch_probabilities.argmax(1)).all()
    assert np.abs(int8_probabilities - torch_probabilities).max() < 0.1
    embeddings = forms["int8"].embeddings(TEXTS)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


def test_an_int8_message_scores_the_same_alone_and_in_any_batch(forms):
    batched_logits, batched_embeddings = forms["int8"].scores(TEXTS)
    for row, text in enumerate(TEXTS):
        logits, embeddings = forms["int8"].scores([text])
        assert np.allclose(logits[0], batched_logits[row], atol=1e-4)
        assert np.allclose(embeddings[0], batched_embeddings[row], atol=1e-5)


def test_the_fallback_is_fitted_on_the_form_that_serves(built_settings, forms):
    served = forms["auto"]
    assert served.metadata.get("calibrated_on", "fp32") == served.metadata["onnx"]["chosen"]
    # The known examples were embedded by the serving form: each training message is, to
    # float rounding (int8 moves embeddings ten times further), its own nearest known example.
    training = dataset_splits(load_dataset(built_settings.data_dir), built_settings).train
    texts = [e.text for e in training if e.intent != built_settings.out_of_scope_label][:8]
    nearest = served.familiarity(served.embeddings(texts))[0]
    assert np.allclose(nearest, 1.0, atol=5e-4)


def test_serving_another_form_than_the_fallback_was_fitted_on_is_logged(built_settings, caplog):
    live = BertIntentClassifier.load(built_settings.intent_models_dir, "cpu")
    record = live.metadata["onnx"]
    other = "fp32" if record["chosen"] == "int8" else "int8"
    with caplog.at_level("WARNING", logger="assistant.intents.classifier"):
        BertIntentClassifier.load(built_settings.intent_models_dir, "cpu", runtime=other)
    assert f"fitted on the {record['chosen']} form but {other} serves" in caplog.text


def test_one_pass_gives_the_familiarity_and_the_intents(forms):
    [prediction] = forms["auto"].assess(["where is my parcel"])
    [reference] = forms["torch"].assess(["where is my parcel"])
    assert prediction.intents[0].intent == reference.intents[0].intent
    assert prediction.familiarity == pytest.approx(reference.familiarity, abs=0.02)


def test_the_gate_keeps_fp32_when_the_tolerance_is_negative(built_settings, forms, tmp_path):
    validation = dataset_splits(load_dataset(built_settings.data_dir), built_settings).validation
    record, sessions = export_forms(forms["torch"], validation, tmp_path, tolerance=-1.0)
    assert set(sessions) == {"fp32", "int8"}
    assert record["chosen"] == "fp32"
    assert record["gate"]["int8_passed"] is False
    assert record["gate"]["examples"] == len(validation)
    assert 0 <= record["gate"]["int8"] <= 1  # measured, not assumed
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.int8.onnx").is_file()


def test_by_default_a_version_serves_the_form_its_fallback_was_fitted_on(built_settings, tmp_path):
    # A version from before the fallback was fitted on int8: its gate chose int8, but its
    # thresholds belong to fp32, so fp32 serves it.
    version = _copy_live_version(built_settings, tmp_path)
    metadata = json.loads((version / METADATA_FILE).read_text())
    metadata.pop("calibrated_on", None)
    metadata["onnx"]["chosen"] = "int8"
    (version / METADATA_FILE).write_text(json.dumps(metadata))
    assert BertIntentClassifier.load(tmp_path, "cpu").runtime.startswith("onnx fp32")
    metadata["calibrated_on"] = "int8"
    (version / METADATA_FILE).write_text(json.dumps(metadata))
    assert BertIntentClassifier.load(tmp_path, "cpu").runtime.startswith("onnx int8")


def test_a_version_saved_without_onnx_forms_loads_on_pytorch(built_settings, forms, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    for path in version.glob("*.onnx"):
        path.unlink()
    metadata = json.loads((version / METADATA_FILE).read_text())
    del metadata["onnx"]
    (version / METADATA_FILE).write_text(json.dumps(metadata))
    older = BertIntentClassifier.load(tmp_path, "cpu")
    assert older.runtime == "torch (cpu)"
    assert np.allclose(older.probabilities(TEXTS), forms["torch"].probabilities(TEXTS), atol=1e-6)


def test_a_damaged_onnx_file_is_refused(built_settings, forms, tmp_path):
    version = _copy_live_version(built_settings, tmp_path)
    chosen = forms["auto"].metadata["onnx"]["chosen"]
    with (version / forms["auto"].metadata["onnx"]["files"][chosen]["file"]).open("r+b") as file:
        file.seek(4096)
        file.write(b"\x00garbage\x00")
    with pytest.raises(ArtifactError, match=r"corrupt.*assistant train"):
        BertIntentClassifier.load(tmp_path, "cpu")
    assert BertIntentClassifier.load(tmp_path, "cpu", runtime="torch").runtime == "torch (cpu)"

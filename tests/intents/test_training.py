import numpy as np
import pytest
from transformers import TrainerCallback

from assistant.core.errors import ArtifactError
from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import IntentExample, load_dataset
from assistant.intents.classifier import BertIntentClassifier
from assistant.intents.training import fit_intent_classifier, train_intent_classifier
from assistant.lifecycle.runs import RUNS_DIR


class StopAfterFirstSave(TrainerCallback):
    """Interrupts training the way Ctrl-C does, right after the first checkpoint."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


@pytest.fixture(scope="module")
def splits(built_settings):
    return dataset_splits(load_dataset(built_settings.data_dir), built_settings)


class StopAfterFirstRefitSave(TrainerCallback):
    """Interrupts the refit (the run with no evaluation) right after its first checkpoint."""

    def on_save(self, args, state, control, **kwargs):
        if args.eval_strategy == "no":
            raise KeyboardInterrupt


class Trainings(TrainerCallback):
    """Counts the training runs that start, and whether each evaluates."""

    def __init__(self):
        self.started = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started.append(args.eval_strategy)


def _settings(built_settings, root, **update):
    return built_settings.model_copy(update={"models_dir": root, "epochs": 2, "seed": 5, **update})


def _probabilities(fitted, examples):
    return fitted.classifier.probabilities([e.text for e in examples])


def test_training_is_reproducible_with_a_seed(built_settings, splits, tmp_path):
    runs = [
        fit_intent_classifier(
            splits.train, splits.validation, _settings(built_settings, tmp_path / r), "sum"
        )
        for r in ("a", "b")
    ]
    assert np.allclose(*(_probabilities(f, splits.test) for f in runs), atol=1e-5)
    assert runs[0].metrics == runs[1].metrics


def test_a_stopped_run_resumes_where_it_left_off(built_settings, splits, tmp_path, capsys):
    settings = _settings(built_settings, tmp_path / "stopped")
    with pytest.raises(KeyboardInterrupt):
        fit_intent_classifier(
            splits.train, splits.validation, settings, "sum", callbacks=[StopAfterFirstSave()]
        )
    assert any((tmp_path / "stopped" / "intent" / RUNS_DIR).rglob("checkpoint-*"))
    resumed = fit_intent_classifier(splits.train, splits.validation, settings, "sum")
    assert "Resuming" in capsys.readouterr().out
    assert not any((tmp_path / "stopped" / "intent" / RUNS_DIR).iterdir())  # cleaned up
    straight = fit_intent_classifier(
        splits.train, splits.validation, _settings(built_settings, tmp_path / "straight"), "sum"
    )
    assert np.allclose(
        _probabilities(resumed, splits.test), _probabilities(straight, splits.test), atol=1e-4
    )


def test_published_version_is_measured_on_test_and_loadable(built_settings, splits, tmp_path):
    settings = _settings(built_settings, tmp_path)
    report = train_intent_classifier(
        splits.train, splits.validation, settings, "sum", test=splits.test
    )
    loaded = BertIntentClassifier.load(settings.intent_models_dir)
    assert loaded.version == report.version
    assert report.metrics["test"]["accuracy"] > 0.6
    validation = report.metrics["validation"]
    assert validation["ece_after_calibration"] <= validation["ece_before_calibration"] + 1e-9
    assert loaded.rejection.to_dict() == loaded.metadata["rejection"]


def test_validation_intents_unknown_to_training_are_refused(built_settings, splits):
    extra = [*splits.validation, IntentExample("a brand new thing", "never_seen")]
    with pytest.raises(ValueError, match="never_seen"):
        fit_intent_classifier(splits.train, extra, built_settings, "sum")


def test_unreachable_base_model_is_a_clear_error(built_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = built_settings.model_copy(update={"intent_base_model": "no-such-org/no-such-model"})
    examples = [IntentExample("hi", "greeting"), IntentExample("bye", "thanks")]
    with pytest.raises(ArtifactError, match=r"cannot load model.*HF_HUB_OFFLINE=0"):
        train_intent_classifier(examples, examples, settings, "checksum")


def test_the_refit_trains_on_validation_too_and_keeps_the_held_out_fallback(
    built_settings, splits, tmp_path
):
    settings = _settings(built_settings, tmp_path, epochs=3, refit_on_validation=True)
    fitted = fit_intent_classifier(splits.train, splits.validation, settings, "sum")
    held_out, refit = fitted.held_out, fitted.classifier
    assert held_out is not None
    record = fitted.metrics["refit"]
    assert record["examples"] == len(splits.train) + len(splits.validation)
    assert record["epochs"] == fitted.metrics["best_epoch"] == record["epochs_run"]
    assert refit.temperature == held_out.temperature
    assert refit.rejection == held_out.rejection
    in_scope = [e for e in (*splits.train, *splits.validation) if e.intent != "out_of_scope"]
    assert len(refit.known.embeddings) == len(in_scope)
    texts = [e.text for e in splits.test]
    assert not np.allclose(refit.probabilities(texts), held_out.probabilities(texts), atol=1e-3)


def test_without_the_refit_the_held_out_model_is_served(built_settings, splits, tmp_path):
    settings = _settings(built_settings, tmp_path, refit_on_validation=False)
    fitted = fit_intent_classifier(splits.train, splits.validation, settings, "sum")
    assert fitted.held_out is None and "refit" not in fitted.metrics
    in_scope = [e for e in splits.train if e.intent != "out_of_scope"]
    assert len(fitted.classifier.known.embeddings) == len(in_scope)


def test_a_published_refit_records_the_held_out_model_on_test(built_settings, splits, tmp_path):
    settings = _settings(built_settings, tmp_path, refit_on_validation=True)
    report = train_intent_classifier(
        splits.train, splits.validation, settings, "sum", test=splits.test
    )
    loaded = BertIntentClassifier.load(settings.intent_models_dir)
    assert loaded.metadata["refit"]["examples"] == report.metrics["refit"]["examples"]
    held_out = report.metrics["refit"]["held_out_model_test"]
    assert set(held_out) == set(report.metrics["test"])


def test_a_refit_stopped_midway_resumes_without_training_the_held_out_run_again(
    built_settings, splits, tmp_path, capsys
):
    settings = _settings(built_settings, tmp_path / "stopped", epochs=3, refit_on_validation=True)
    with pytest.raises(KeyboardInterrupt):
        fit_intent_classifier(
            splits.train, splits.validation, settings, "sum", callbacks=[StopAfterFirstRefitSave()]
        )
    capsys.readouterr()
    trainings = Trainings()
    resumed = fit_intent_classifier(
        splits.train, splits.validation, settings, "sum", callbacks=[trainings]
    )
    assert capsys.readouterr().out.count("Resuming") == 2  # the finished run, then the refit
    assert trainings.started == ["no"]  # only the refit trains; the held-out run is loaded
    straight = fit_intent_classifier(
        splits.train,
        splits.validation,
        _settings(built_settings, tmp_path / "straight", epochs=3, refit_on_validation=True),
        "sum",
    )
    assert np.allclose(
        _probabilities(resumed, splits.test), _probabilities(straight, splits.test), atol=1e-4
    )

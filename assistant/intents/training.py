"""Training the intent classifier: probe, fine-tune, calibrate, choose thresholds, publish.

1. Linear probe: a logistic regression on the frozen encoder's sentence
   embeddings gives the head its starting weights.
2. Fine-tune the encoder and head together with the Hugging Face `Trainer`
   (label smoothing, a small learning rate for the encoder, linear decay),
   early-stopped on validation accuracy, ties broken by the lower validation
   loss; the epoch best by that measure is kept (`fine_tuning.py`). Checkpoints are
   kept per run, so a stopped run continues where it left off when the same command
   is given again.
3. Temperature scaling and the fallback threshold, margin and familiarity (the
   nearest training example's similarity, `familiarity.py`), all fitted on the
   validation split; the test split, when given, is only measured.
4. Refit (`refit_on_validation`, off by default): the same recipe once more on train +
   validation, stopped at the epoch step 2 kept. The temperature and fallback come
   from step 3, fitted while validation was held out; the known examples are the
   refit model's embeddings of both splits.
5. Published with its ONNX forms, int8 chosen on validation accuracy (`onnx_model.py`).
   When int8 will serve, step 3 runs again on it (`fit_to_int8`), so the thresholds
   and known examples are those of the form that answers customers.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from assistant.core.base_models import pick_device
from assistant.core.errors import TrainingError
from assistant.core.files import (
    write_json,
)
from assistant.core.onnx_forms import INT8, Session, serving_form
from assistant.core.settings import Settings
from assistant.datasets.loading import IntentExample
from assistant.intents.classifier import (
    METADATA_FILE,
    MODEL_FORMAT,
    BertIntentClassifier,
)
from assistant.intents.fine_tuning import fine_tune, initialise_head, load_base
from assistant.intents.fitting import calibrate, measure, remember_examples
from assistant.intents.network import IntentModel
from assistant.intents.onnx_model import OnnxIntentModel, export_forms
from assistant.lifecycle.runs import resume_point, run_directory
from assistant.lifecycle.versions import new_version, publish_version


@dataclass(frozen=True)
class TrainingReport:
    version: str
    path: Path
    metrics: dict[str, Any]


@dataclass(frozen=True)
class FittedModel:
    """A fine-tuned, calibrated classifier not yet published, with its validation figures."""

    classifier: BertIntentClassifier
    metrics: dict[str, Any]
    validation: Sequence[IntentExample] = ()  # what the ONNX forms are chosen on
    train: Sequence[IntentExample] = ()  # int8's channel scales; the fallback refitted on it
    held_out: BertIntentClassifier | None = None  # before the refit, when there was one


def train_intent_classifier(
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
    data_checksum: str,
    test: Sequence[IntentExample] = (),
    fresh: bool = False,
) -> TrainingReport:
    """Fine-tune, calibrate, measure on `test` (if given) and publish a new version."""
    started = time.perf_counter()
    fitted = fit_intent_classifier(train, validation, settings, data_checksum, fresh)
    return publish_fitted(fitted, settings, data_checksum, test, started)


def publish_fitted(
    fitted: FittedModel,
    settings: Settings,
    data_checksum: str,
    test: Sequence[IntentExample],
    started: float,
    extra: dict[str, Any] | None = None,
    make_current: bool = True,
) -> TrainingReport:
    """Save a fitted model as a new version, with its ONNX forms (step 5), measured on
    `test` (if given) in the form that will serve: the live version, unless `make_current`
    is False (a candidate, promoted or not later)."""
    metrics = fitted.metrics
    metrics["training_seconds"] = round(time.perf_counter() - started, 1)
    metadata = {
        **fitted.classifier.metadata,
        **(extra or {}),
        "version": new_version(),
        "data_checksum": data_checksum,
        "test_examples": len(test),
        "metrics": metrics,
    }
    fitted.classifier.metadata = metadata

    def forms(folder: Path) -> dict[str, Any]:
        record, sessions = export_forms(
            fitted.classifier,
            fitted.validation,
            folder,
            settings.int8_accuracy_tolerance,
            test=test,
            validation_trained_on=fitted.held_out is not None,
            calibration=[example.text for example in fitted.train],
        )
        served = serving_form(record, pick_device(settings.device), settings.encoder_runtime)
        classifier = fitted.classifier
        if served and served[0] == INT8 and INT8 in sessions:
            classifier = fit_to_int8(fitted, sessions[INT8], settings)
        if test:
            metrics["test"] = measure(classifier, test, settings.out_of_scope_label)
            if fitted.held_out is not None:
                metrics["refit"]["held_out_model_test"] = measure(
                    fitted.held_out, test, settings.out_of_scope_label
                )
        return record

    path = publish(fitted.classifier, settings.intent_models_dir, make_current, forms)
    return TrainingReport(metadata["version"], path, metrics)


def fit_to_int8(fitted: FittedModel, session: Session, settings: Settings) -> BertIntentClassifier:
    """Fit the temperature, fallback and known examples again on the int8 form that will
    serve (int8 moves probabilities and familiarity a little), as step 3 fitted them on
    fp32; return the classifier running on that form. A refit model keeps the held-out
    run's temperature and fallback (no data is held out from it); only its known examples
    are embedded again."""
    classifier = fitted.classifier
    served = copy.copy(classifier)
    served.model = OnnxIntentModel(session)
    if fitted.held_out is None:
        fitted.metrics.update(calibrate(served, fitted.train, fitted.validation, settings))
    else:
        remember_examples(served, [*fitted.train, *fitted.validation], settings.out_of_scope_label)
    classifier.temperature, classifier.rejection = served.temperature, served.rejection
    classifier.known = served.known
    classifier.metadata["calibrated_on"] = INT8
    return served


def fit_intent_classifier(
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
    data_checksum: str,
    fresh: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    refit: bool | None = None,
) -> FittedModel:
    """Steps 1-4 of the module docstring (step 4 when `refit`, by default
    `refit_on_validation`); scored on `validation` only."""
    labels = sorted({example.intent for example in train})
    unknown = {example.intent for example in validation} - set(labels)
    if unknown:
        raise TrainingError(
            f"intents in the validation data but not in training: {sorted(unknown)}"
        )
    run = _train_network(train, validation, labels, settings, [data_checksum], fresh, callbacks)
    classifier = BertIntentClassifier(
        run.model,
        run.tokenizer,
        labels,
        temperature=1.0,
        metadata=_training_metadata(settings, labels, train, validation),
        device=run.device,
        max_length=settings.max_length,
    )
    metrics = calibrate(classifier, train, validation, settings)
    metrics["epochs_run"] = run.epochs_run
    metrics["best_epoch"] = run.best_epoch
    fitted = FittedModel(classifier, metrics, list(validation), list(train))
    if (settings.refit_on_validation if refit is None else refit) and validation:
        fitted = refit_on_validation(
            fitted, train, validation, settings, data_checksum, fresh, callbacks
        )
    # Kept until the refit is done: a refit stopped and started again finds this run finished.
    shutil.rmtree(run.folder, ignore_errors=True)
    return fitted


def refit_on_validation(
    fitted: FittedModel,
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
    data_checksum: str,
    fresh: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
) -> FittedModel:
    """Step 4: train the recipe again on train + validation for the epochs the held-out
    run kept, and give the new network the held-out run's temperature and fallback."""
    held_out = fitted.classifier
    examples = [*train, *validation]
    epochs = int(fitted.metrics["best_epoch"])
    key = [data_checksum, "refit", epochs]
    run = _train_network(examples, (), held_out.labels, settings, key, fresh, callbacks, epochs)
    classifier = BertIntentClassifier(
        run.model,
        run.tokenizer,
        held_out.labels,
        temperature=held_out.temperature,
        metadata={**held_out.metadata, "train_examples": len(examples)},
        device=run.device,
        max_length=settings.max_length,
    )
    classifier.rejection = held_out.rejection
    remember_examples(classifier, examples, settings.out_of_scope_label)
    refit = {"examples": len(examples), "epochs": epochs, "epochs_run": run.epochs_run}
    classifier.metadata["refit"] = refit
    shutil.rmtree(run.folder, ignore_errors=True)
    metrics = {**fitted.metrics, "refit": dict(refit)}
    return FittedModel(classifier, metrics, fitted.validation, fitted.train, held_out)


@dataclass(frozen=True)
class _Run:
    """One fine-tuning run's network and what it ran."""

    tokenizer: Any
    model: IntentModel
    device: str
    folder: Path  # its checkpoints, until the caller removes them
    epochs_run: float
    best_epoch: int


def _train_network(
    examples: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    labels: list[str],
    settings: Settings,
    key: list[Any],
    fresh: bool,
    callbacks: Sequence[TrainerCallback],
    stop_after: int | None = None,
) -> _Run:
    """Steps 1-2 on `examples`: resumed from the run's folder (named by `key`, the labels
    and the recipe) when one was stopped, probed first otherwise."""
    set_seed(settings.seed)
    tokenizer, model = load_base(settings, len(labels))
    label_ids = {label: index for index, label in enumerate(labels)}
    recipe = settings.model_dump(include=TRAINING_FIELDS, mode="json")
    folder = run_directory(settings.intent_models_dir, [*key, labels, recipe])
    resume_from = resume_point(folder, fresh)
    device = pick_device(settings.device)
    if not resume_from:
        initialise_head(model, tokenizer, examples, label_ids, settings, device)
    epochs_run, best_epoch = fine_tune(
        model,
        tokenizer,
        (examples, validation),
        label_ids,
        settings,
        folder,
        resume_from,
        callbacks,
        stop_after=stop_after,
    )
    return _Run(tokenizer, model, device, folder, epochs_run, best_epoch)


TRAINING_FIELDS = {
    "intent_base_model",
    "epochs",
    "batch_size",
    "learning_rate",
    "head_learning_rate",
    "weight_decay",
    "warmup_ratio",
    "label_smoothing",
    "probe_regularisation",
    "freeze_word_embeddings",
    "early_stopping_patience",
    "refit_on_validation",
    "max_length",
    "bf16",
    "seed",
}


def _training_metadata(
    settings: Settings,
    labels: list[str],
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "labels": labels,
        "base_model": settings.intent_base_model,
        "max_length": settings.max_length,
        "out_of_scope_label": settings.out_of_scope_label,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "recipe": settings.model_dump(include=TRAINING_FIELDS, mode="json"),
    }


def publish(
    classifier: BertIntentClassifier,
    models_dir: Path,
    make_current: bool = True,
    onnx_forms: Callable[[Path], dict[str, Any]] | None = None,
) -> Path:
    """Write a version folder atomically and (unless told not to) point `CURRENT` at it;
    `onnx_forms` writes the ONNX files into it and returns their record."""

    def write(folder: Path) -> None:
        classifier.model.save(folder)
        classifier.tokenizer.save_pretrained(folder)
        if onnx_forms is not None:  # first: the int8 form may refit the known examples
            classifier.metadata["onnx"] = onnx_forms(folder)
        if classifier.known is not None:
            classifier.known.save(folder)
        write_json(folder / METADATA_FILE, classifier.metadata)

    return publish_version(models_dir, classifier.metadata["version"], write, make_current)

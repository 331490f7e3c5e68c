"""The BERT intent classifier: fine-tune, calibrate, save, load and predict.

A sequence-classification head on the configured BERT (MiniLM by default) is
fine-tuned with the Hugging Face `Trainer`, early-stopped on a validation split,
and its probabilities calibrated by temperature scaling on the same split. Each
trained model is saved in its own version folder with its labels and metrics;
`CURRENT` names the version in service.
"""

from __future__ import annotations

import itertools
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
    get_linear_schedule_with_warmup,
    set_seed,
)

from assistant.config import Settings, model_unavailable, pick_device, resolve_model_path
from assistant.data import IntentExample
from assistant.files import (
    ArtifactError,
    atomic_write_text,
    publish_directory,
    read_json,
    staging_directory,
    write_json,
)
from assistant.router import IntentScore

METADATA_FILE = "classifier.json"
CURRENT_FILE = "CURRENT"
REBUILD_HINT = "Run `assistant train` (or `python launch.py`) to train the intent model again."
CALIBRATION_BINS = 15

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingReport:
    version: str
    path: Path
    metrics: dict[str, Any]


class IntentClassifier:
    """A loaded classifier; `predict` is safe to call from several threads."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        labels: list[str],
        temperature: float,
        metadata: dict[str, Any],
        device: str,
        max_length: int,
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.labels = labels
        self.temperature = temperature
        self.metadata = metadata
        self.device = device
        self.max_length = max_length

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        batches = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                batches.append(self.model(**encoded).logits.float().cpu().numpy())
        return np.concatenate(batches) if batches else np.zeros((0, len(self.labels)))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)

    def predict(self, texts: Sequence[str], top_k: int = 3) -> list[list[IntentScore]]:
        """The `top_k` intents for each text, best first, with calibrated probabilities."""
        results = []
        for row in self.probabilities(texts):
            best = np.argsort(row)[::-1][:top_k]
            results.append([IntentScore(self.labels[i], float(row[i])) for i in best])
        return results

    @classmethod
    def load(cls, models_dir: Path, device: str = "auto", version: str | None = None):
        """Load the version named in `CURRENT` (or `version`), checking it is complete."""
        path = version_path(models_dir, version)
        metadata = read_json(path / METADATA_FILE, REBUILD_HINT)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise ArtifactError(
                f"the intent model in {path} cannot be loaded ({error}). {REBUILD_HINT}"
            ) from error
        labels = metadata.get("labels", [])
        if model.config.num_labels != len(labels):
            raise ArtifactError(
                f"{path}: the model has {model.config.num_labels} outputs but {METADATA_FILE} "
                f"lists {len(labels)} labels. {REBUILD_HINT}"
            )
        return cls(
            model,
            tokenizer,
            labels,
            float(metadata.get("temperature", 1.0)),
            metadata,
            pick_device(device),
            int(metadata.get("max_length", 64)),
        )


def version_path(models_dir: Path, version: str | None = None) -> Path:
    if version is None:
        pointer = models_dir / CURRENT_FILE
        if not pointer.is_file():
            raise ArtifactError(f"no intent model in {models_dir}. {REBUILD_HINT}")
        version = pointer.read_text(encoding="utf-8").strip()
    path = models_dir / version
    if not path.is_dir():
        raise ArtifactError(
            f"intent model version {version!r} not found in {models_dir}. {REBUILD_HINT}"
        )
    return path


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponent = np.exp(shifted)
    return exponent / exponent.sum(axis=-1, keepdims=True)


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The gap between confidence and accuracy, averaged over confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises validation log-loss (Guo et al., 2017)."""
    logits_t = torch.tensor(logits, dtype=torch.float64)
    targets_t = torch.tensor(targets, dtype=torch.long)
    log_temperature = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits_t / log_temperature.exp(), targets_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_temperature.detach().exp().clamp(0.05, 20.0))


def classification_metrics(predicted: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(targets, predicted)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
    }


class _Encoded(torch.utils.data.Dataset):
    def __init__(
        self,
        tokenizer: Any,
        examples: Sequence[IntentExample],
        label_ids: dict[str, int],
        max_length: int,
    ):
        texts = [example.text for example in examples]
        self.features = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = [label_ids[example.intent] for example in examples]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.features.items()}
        item["labels"] = self.labels[index]
        return item


def _optimiser(model: torch.nn.Module, settings: Settings, total_steps: int):
    """AdamW with a larger learning rate for the new head than for the pretrained body."""
    head, body = [], []
    for name, parameter in model.named_parameters():
        (head if name.startswith(("classifier", "bert.pooler")) else body).append(parameter)
    optimiser = torch.optim.AdamW(
        [
            {"params": body, "lr": settings.learning_rate},
            {"params": head, "lr": settings.head_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )
    schedule = get_linear_schedule_with_warmup(optimiser, int(0.06 * total_steps), total_steps)
    return optimiser, schedule


def train_intent_classifier(
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
    data_checksum: str,
    test: Sequence[IntentExample] = (),
) -> TrainingReport:
    """Fine-tune, calibrate, evaluate on `test` (if given) and publish a new version."""
    started = time.perf_counter()
    labels = sorted({example.intent for example in train})
    label_ids = {label: index for index, label in enumerate(labels)}
    unknown = {e.intent for e in (*validation, *test)} - set(labels)
    if unknown:
        raise ValueError(
            f"intents in validation/test data but not in training data: {sorted(unknown)}"
        )
    base = resolve_model_path(settings.intent_base_model)
    set_seed(settings.seed)  # before the model loads: its new head is initialised randomly
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id=label_ids,
        )
    except OSError as error:
        raise ArtifactError(model_unavailable(settings.intent_base_model, error)) from error
    device = pick_device(settings.device)
    train_set = _Encoded(tokenizer, train, label_ids, settings.max_length)
    validation_set = _Encoded(tokenizer, validation, label_ids, settings.max_length)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    with tempfile.TemporaryDirectory(
        dir=_ensure(settings.intent_models_dir), prefix=".checkpoints-"
    ) as scratch:
        trainer = Trainer(
            model=model,
            args=_training_arguments(settings, scratch, device),
            train_dataset=train_set,
            eval_dataset=validation_set,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda prediction: classification_metrics(
                prediction.predictions.argmax(-1), prediction.label_ids
            ),
            optimizers=_optimiser(model, settings, steps_per_epoch * settings.epochs),
            callbacks=[EarlyStoppingCallback(settings.early_stopping_patience)],
        )
        trainer.train()
        epochs_run = trainer.state.epoch
    classifier = IntentClassifier(
        model, tokenizer, labels, 1.0, {"version": "training"}, device, settings.max_length
    )
    metrics = _calibrate_and_evaluate(classifier, validation, test, label_ids)
    metrics["epochs_run"] = float(epochs_run or 0)
    metrics["training_seconds"] = round(time.perf_counter() - started, 1)
    metadata = {
        "version": datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f"),
        "labels": labels,
        "temperature": classifier.temperature,
        "base_model": settings.intent_base_model,
        "max_length": settings.max_length,
        "data_checksum": data_checksum,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "test_examples": len(test),
        "seed": settings.seed,
        "metrics": metrics,
    }
    path = _publish(model, tokenizer, metadata, settings.intent_models_dir)
    return TrainingReport(metadata["version"], path, metrics)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _training_arguments(settings: Settings, output_dir: str, device: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=64,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_strategy="epoch",
        report_to="none",
        seed=settings.seed,
        use_cpu=device == "cpu",
        disable_tqdm=False,
    )


def _calibrate_and_evaluate(
    classifier: IntentClassifier,
    validation: Sequence[IntentExample],
    test: Sequence[IntentExample],
    label_ids: dict[str, int],
) -> dict[str, Any]:
    validation_logits = classifier.logits([e.text for e in validation])
    validation_targets = np.array([label_ids[e.intent] for e in validation])
    ece_before = expected_calibration_error(softmax(validation_logits), validation_targets)
    classifier.temperature = fit_temperature(validation_logits, validation_targets)
    metrics: dict[str, Any] = {
        "validation": classification_metrics(validation_logits.argmax(1), validation_targets),
        "validation_ece_before_calibration": ece_before,
        "validation_ece_after_calibration": expected_calibration_error(
            softmax(validation_logits / classifier.temperature), validation_targets
        ),
    }
    if test:
        test_logits = classifier.logits([e.text for e in test])
        metrics["test"] = classification_metrics(
            test_logits.argmax(1), np.array([label_ids[e.intent] for e in test])
        )
    return metrics


def _publish(model: Any, tokenizer: Any, metadata: dict[str, Any], models_dir: Path) -> Path:
    final = models_dir / metadata["version"]
    staging = staging_directory(final)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_json(staging / METADATA_FILE, metadata)
    publish_directory(staging, final)
    atomic_write_text(models_dir / CURRENT_FILE, metadata["version"] + "\n")
    return final

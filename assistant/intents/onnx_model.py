"""The intent model in ONNX: one run gives the logits and the unit-length sentence embedding.

`export_forms` runs at training time (training.py): the fine-tuned network is
exported, quantised to int8 (its channel scales measured on training messages),
and both forms are scored on the validation split;
int8 is chosen for the CPU when its accuracy is within `int8_accuracy_tolerance`
of fp32 (see core/onnx_forms.py). The choice and the figures go into
`classifier.json` under "onnx", the files beside it (`model.onnx`,
`model.int8.onnx`). `OnnxIntentModel` is what the classifier runs when it loads
such a version.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.core.int8 import calibration_batches
from assistant.core.onnx_forms import AGREEMENT, FP32, INT8, Session, export, gate_forms
from assistant.datasets.loading import IntentExample

if TYPE_CHECKING:
    from assistant.intents.classifier import BertIntentClassifier

ONNX_STEM = "model"
OUTPUTS = ("logits", "sentence_embedding")  # "embedding" alone clashes with a graph name
EXAMPLE_TEXTS = ("where is my parcel", "hello, can you tell me how much delivery costs?")
AGREEMENT_TEXTS = 32


class OnnxIntentModel:
    """The intent network as an ONNX Runtime session, shared by every thread."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def num_labels(self) -> int:
        return self.session.output_width(0)

    @property
    def dimension(self) -> int:
        return self.session.output_width(1)

    @property
    def runtime(self) -> str:
        return self.session.runtime

    def scores(self, encoded: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, embeddings = self.session.run(encoded)
        return logits, embeddings


def write_onnx(classifier: BertIntentClassifier, path: Path) -> None:
    """Export the classifier's PyTorch network (on the CPU) to `path`."""
    from assistant.intents.network import ExportedScores

    model = classifier.model
    device = next(model.parameters()).device
    model.to("cpu")
    try:
        example = classifier.tokenizer(list(EXAMPLE_TEXTS), padding=True, return_tensors="pt")
        export(ExportedScores(model), dict(example), path, OUTPUTS)
    finally:
        model.to(device)


def export_forms(
    classifier: BertIntentClassifier,
    validation: Sequence[IntentExample],
    folder: Path,
    tolerance: float,
    test: Sequence[IntentExample] = (),
    validation_trained_on: bool = False,
    calibration: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Session]]:
    """Export and quantise the classifier into `folder`, and choose the form the CPU serves:
    int8 when its validation accuracy is at most `tolerance` below fp32's. The record says
    what was chosen and why, and whether the model was trained on the validation split too
    (a refit: both forms are then scored on data they have seen); it is returned with the
    forms' sessions (none when the export failed or disagrees with PyTorch). The int8
    form's channel scales are measured on the `calibration` messages (training ones). The
    test split, when given, is only measured."""
    texts = [example.text for example in validation]
    torch_logits = classifier.logits(texts) if texts else np.zeros((0, len(classifier.labels)))

    def on(session: Session) -> BertIntentClassifier:
        served = copy.copy(classifier)
        served.model = OnnxIntentModel(session)
        return served

    def score(session: Session) -> float | None:
        return accuracy(on(session), validation)

    record, sessions = gate_forms(
        folder,
        ONNX_STEM,
        lambda path: write_onnx(classifier, path),
        score,
        tolerance,
        "validation accuracy",
        calibration_batches(classifier.tokenizer, calibration, classifier.max_length),
    )
    if not sessions:
        return record, {}
    sample = texts[:AGREEMENT_TEXTS]
    difference = (
        float(np.abs(on(sessions[FP32]).logits(sample) - torch_logits[: len(sample)]).max())
        if sample
        else 0.0
    )
    record["gate"]["examples"] = len(validation)
    record["gate"]["validation_trained_on"] = validation_trained_on
    record["gate"]["torch_fp32"] = accuracy_of(torch_logits, classifier, validation)
    record["agreement"] = {"texts": len(sample), "max_logit_difference_fp32_vs_torch": difference}
    if difference > AGREEMENT:  # the export is wrong: PyTorch serves
        for entry in record["files"].values():
            (folder / entry["file"]).unlink(missing_ok=True)
        error = "the export disagrees with PyTorch"
        return {**record, "files": {}, "chosen": None, "error": error}, {}
    if test:
        record["test"] = {
            "examples": len(test),
            FP32: accuracy(on(sessions[FP32]), test),
            INT8: accuracy(on(sessions[INT8]), test),
        }
    return record, sessions


def accuracy(classifier: BertIntentClassifier, examples: Sequence[IntentExample]) -> float | None:
    """Top-intent accuracy over every label (the out-of-scope one included)."""
    if not examples:
        return None
    return accuracy_of(classifier.logits([e.text for e in examples]), classifier, examples)


def accuracy_of(
    logits: np.ndarray, classifier: BertIntentClassifier, examples: Sequence[IntentExample]
) -> float | None:
    if not examples:
        return None
    label_ids = {label: index for index, label in enumerate(classifier.labels)}
    targets = np.array([label_ids.get(e.intent, -1) for e in examples])
    return float((logits.argmax(1) == targets).mean())

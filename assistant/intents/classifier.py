"""The trained intent classifier: load a version, predict calibrated top intents.

Each trained model lives in its own version folder (weights, tokenizer, labels,
temperature, fallback thresholds, the training examples' embeddings for the
familiarity check, metrics, and the network's ONNX forms with the one chosen for
the CPU); `CURRENT` names the version in service. Training is in `training.py`;
the ONNX forms in `onnx_model.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.core.base_models import pick_device
from assistant.core.errors import ArtifactError, TrainingError
from assistant.core.onnx_forms import FP32, load_form
from assistant.core.padding import length_groups
from assistant.core.settings import Settings
from assistant.core.tokens import TokenizerFile
from assistant.core.types import IntentPrediction, IntentScore
from assistant.intents.calibration import softmax
from assistant.intents.familiarity import KnownExamples
from assistant.intents.onnx_model import OnnxIntentModel
from assistant.intents.rejection import RejectionPolicy
from assistant.lifecycle.versions import read_version, version_path

if TYPE_CHECKING:
    from assistant.intents.network import IntentModel

log = logging.getLogger(__name__)

METADATA_FILE = "classifier.json"
WHAT = "intent model"
MODEL_FORMAT = 2  # bumped when the saved layout changes; older versions must be retrained
REBUILD_HINT = "Run `assistant train` (or `python launch.py`) to train the intent model again."
INFERENCE_BATCH = 64
NO_FALLBACK = RejectionPolicy(0.0, 0.0)


class BertIntentClassifier:
    """A loaded classifier; `predict` is safe to call from several threads."""

    def __init__(
        self,
        model: IntentModel | OnnxIntentModel,
        tokenizer: Any,
        labels: list[str],
        temperature: float,
        metadata: dict[str, Any],
        device: str,
        max_length: int,
        rejection: RejectionPolicy = NO_FALLBACK,
        known: KnownExamples | None = None,
    ) -> None:
        self.model = model if isinstance(model, OnnxIntentModel) else model.to(device).eval()
        self.tokenizer = tokenizer
        self.labels = labels
        self.temperature = temperature
        self.metadata = metadata
        self.device = device
        self.max_length = max_length
        self.rejection = rejection
        self.known = known  # the training examples' embeddings, for `familiarity`

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def runtime(self) -> str:
        """What runs the network: "onnx int8 (CPUExecutionProvider)", "torch (cpu)"..."""
        if isinstance(self.model, OnnxIntentModel):
            return self.model.runtime
        return f"torch ({self.device})"

    @property
    def dimension(self) -> int:
        if isinstance(self.model, OnnxIntentModel):
            return self.model.dimension
        return self.model.head.in_features

    def logits(self, texts: Sequence[str], batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Raw scores, computed in batches of similar length to keep padding small."""
        return self.scores(texts, batch_size)[0]

    def scores(
        self, texts: Sequence[str], batch_size: int = INFERENCE_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """The raw scores and the sentence embeddings they come from, in one pass."""
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        embeddings = np.zeros((len(texts), self.dimension), dtype=np.float32)
        onnx = isinstance(self.model, OnnxIntentModel)
        for rows in length_groups(texts, batch_size):
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np" if onnx else "pt",
            )
            if onnx:
                logits[rows], embeddings[rows] = self.model.scores(encoded)
                continue
            import torch  # PyTorch serves: imported only then (see core/tokens.py)

            with torch.inference_mode():
                batch_logits, batch_embeddings = self.model.scores(**encoded.to(self.device))
            logits[rows] = batch_logits.float().cpu().numpy()
            embeddings[rows] = batch_embeddings.float().cpu().numpy()
        return logits, embeddings

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)

    def familiarity(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Each embedding's cosine to the nearest known example and that example's label
        index; None for a model saved without its examples."""
        return None if self.known is None else self.known.nearest(embeddings)

    def assess(self, texts: Sequence[str], top_k: int = 3) -> list[IntentPrediction]:
        """The `top_k` intents for each text, best first, with calibrated probabilities,
        and how familiar each text is."""
        logits, embeddings = self.scores(texts)
        probabilities = softmax(logits / self.temperature)
        nearest = self.familiarity(embeddings)
        results = []
        for row, scores in enumerate(probabilities):
            best = np.argsort(scores)[::-1][:top_k]
            intents = [IntentScore(self.labels[i], float(scores[i])) for i in best]
            if nearest is None:
                results.append(IntentPrediction(intents))
            else:
                similarity, intent = nearest[0][row], nearest[1][row]
                results.append(
                    IntentPrediction(intents, float(similarity), self.labels[int(intent)])
                )
        return results

    def predict(self, texts: Sequence[str], top_k: int = 3) -> list[list[IntentScore]]:
        """The `top_k` intents for each text, best first, with calibrated probabilities."""
        return [prediction.intents for prediction in self.assess(texts, top_k)]

    def check_known(self, intents: Sequence[str], out_of_scope_label: str | None) -> None:
        """Refuse labelled data with intents this model has no class for."""
        unknown = set(intents) - set(self.labels) - {out_of_scope_label}
        if unknown:
            raise TrainingError(f"intents the model was not trained on: {sorted(unknown)}")

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """The unit-length sentence embeddings the head classifies."""
        from assistant.intents.network import EMBED_BATCH, embed_texts

        if isinstance(self.model, OnnxIntentModel):
            return self.scores(texts, EMBED_BATCH)[1]
        return embed_texts(self.model, self.tokenizer, texts, self.max_length, self.device)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        version: str | None = None,
        previous: BertIntentClassifier | None = None,
    ) -> BertIntentClassifier:
        """The configured classifier at `version` (None: the live one)."""
        return cls.load(
            settings.intent_models_dir,
            settings.models.device,
            version,
            runtime=settings.models.encoder_runtime,
        )

    @classmethod
    def load(
        cls,
        models_dir: Path,
        device: str = "auto",
        version: str | None = None,
        runtime: str = "auto",
    ) -> BertIntentClassifier:
        """Load the version named in `CURRENT` (or `version`), checking it is complete.

        `runtime` ("auto", "int8", "fp32", "torch"): "auto" runs, on the CPU, the ONNX form
        the fallback was fitted on: int8 when training served the gate's int8 choice, fp32
        otherwise, older versions included (core/onnx_forms.py); a version saved without
        ONNX forms runs on PyTorch.
        """
        path, metadata = read_version(
            models_dir, version, METADATA_FILE, MODEL_FORMAT, WHAT, REBUILD_HINT
        )
        device = pick_device(device)
        if runtime == "auto" and device == "cpu":
            runtime = metadata.get("calibrated_on", FP32)
        session = load_form(path, metadata.get("onnx"), device, runtime, REBUILD_HINT)
        warn_if_calibrated_elsewhere(metadata, session.form if session else FP32)
        max_length = int(metadata.get("max_length", 64))
        try:
            if session:
                model, tokenizer = OnnxIntentModel(session), TokenizerFile.load(path, max_length)
            else:
                model, tokenizer = torch_model(path)
            known = KnownExamples.load(path)
        except (OSError, ValueError, KeyError) as error:
            raise ArtifactError(
                f"the intent model in {path} cannot be loaded ({error}). {REBUILD_HINT}"
            ) from error
        labels = metadata.get("labels", [])
        if model.num_labels != len(labels):
            raise ArtifactError(
                f"{path}: the model has {model.num_labels} outputs but {METADATA_FILE} "
                f"lists {len(labels)} labels. {REBUILD_HINT}"
            )
        return cls(
            model,
            tokenizer,
            labels,
            float(metadata.get("temperature", 1.0)),
            metadata,
            device,
            max_length,
            RejectionPolicy.from_dict(metadata["rejection"])
            if "rejection" in metadata
            else NO_FALLBACK,
            known,
        )


def torch_model(path: Path) -> tuple[IntentModel, Any]:
    """The network and tokenizer for PyTorch to serve."""
    from transformers import AutoTokenizer

    from assistant.intents.network import IntentModel

    return IntentModel.load(path), AutoTokenizer.from_pretrained(path)


def intent_model_path(models_dir: Path, version: str | None = None) -> Path:
    return version_path(models_dir, version, WHAT, REBUILD_HINT)


def classification_metrics(predicted: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    # Imported here: scikit-learn costs over a second of the server's start, which never scores.
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(targets, predicted)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
    }


# Far below one example's share of accuracy in any realistic validation set, so the loss
# only decides between epochs of equal accuracy.
LOSS_TIE_BREAK = 1e-7


def checkpoint_metrics(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Validation figures of one epoch, with `selection`: accuracy, ties broken by the lower
    cross-entropy. Accuracy picks the epoch on a large validation set; on a small one, where
    several epochs score the same, the loss tells them apart."""
    import torch

    metrics = classification_metrics(logits.argmax(-1), targets)
    log_probabilities = torch.log_softmax(torch.from_numpy(logits).float(), dim=-1)
    loss = float(-log_probabilities[np.arange(len(targets)), targets].mean())
    return {**metrics, "selection": metrics["accuracy"] - LOSS_TIE_BREAK * loss}


def warn_if_calibrated_elsewhere(metadata: dict[str, Any], served: str) -> None:
    """Say so when the form serving is not the one the fallback was fitted on (a runtime
    chosen after training): probabilities and familiarity then differ a little from those
    its thresholds were chosen for."""
    calibrated = metadata.get("calibrated_on", FP32)
    if served != calibrated:
        log.warning(
            "intent model %s: its fallback was fitted on the %s form but %s serves; "
            "retrain with this encoder_runtime to fit it on %s",
            metadata.get("version"),
            calibrated,
            served,
            served,
        )

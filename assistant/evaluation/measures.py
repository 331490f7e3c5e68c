"""Measuring a trained classifier (and the retrieval index) on labelled, held-out data.

The result is a plain dictionary, written out by `report.py` as JSON, Markdown
and charts: overall and per-intent figures, calibration before and after
temperature scaling, what the fallback catches, the misclassified messages with
their scores, and recall@k / MRR of the retrieval index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from assistant.datasets.loading import IntentExample
from assistant.intents.calibration import expected_calibration_error, reliability_bins, softmax
from assistant.intents.classifier import BertIntentClassifier, classification_metrics
from assistant.intents.rejection import outcome, target_indices
from assistant.retrieval.index import FaissRetriever

RETRIEVAL_KS = (1, 3, 5, 10)
MAP_POINTS = 3000  # t-SNE beyond this is slow and the picture no clearer
TOP_CONFUSIONS = 20


def evaluate_classifier(
    classifier: BertIntentClassifier,
    examples: Sequence[IntentExample],
    out_of_scope_label: str | None,
) -> dict[str, Any]:
    """Every figure of the report for the classifier, plus the arrays the charts need."""
    classifier.check_known([e.intent for e in examples], out_of_scope_label)
    texts = [e.text for e in examples]
    logits = classifier.logits(texts)
    raw = softmax(logits)
    calibrated = softmax(logits / classifier.temperature)
    label_ids = {label: i for i, label in enumerate(classifier.labels)}
    # Out-of-scope messages count as their class when the model has one, else as -1.
    targets = np.array([label_ids.get(e.intent, -1) for e in examples])
    in_scope_targets = target_indices(
        [e.intent for e in examples], classifier.labels, out_of_scope_label
    )
    predicted = calibrated.argmax(axis=1)
    present = sorted(set(targets[targets >= 0]) | set(predicted))
    names = [classifier.labels[i] for i in present]
    return {
        "model_version": classifier.version,
        "examples": len(examples),
        **classification_metrics(predicted, targets),
        "per_intent": _per_intent(targets, predicted, present, names),
        "calibration": {
            "temperature": classifier.temperature,
            "ece_before": expected_calibration_error(raw, targets),
            "ece_after": expected_calibration_error(calibrated, targets),
            "bins_before": [b.__dict__ for b in reliability_bins(raw, targets)],
            "bins_after": [b.__dict__ for b in reliability_bins(calibrated, targets)],
        },
        "fallback": {
            "policy": classifier.rejection.to_dict(),
            **outcome(
                calibrated,
                in_scope_targets,
                classifier.labels,
                classifier.rejection,
                out_of_scope_label,
            ).__dict__,
            "without_fallback": _no_fallback_outcome(predicted, in_scope_targets),
        },
        "top_confusions": _top_confusions(targets, predicted, classifier.labels),
        "misclassified": _misclassified(texts, targets, calibrated, classifier.labels),
        "confusion_matrix": {
            "labels": names,
            "counts": confusion_matrix(targets, predicted, labels=present).tolist(),
        },
        "confidences": {
            "correct": calibrated.max(axis=1)[predicted == targets].round(4).tolist(),
            "wrong": calibrated.max(axis=1)[predicted != targets].round(4).tolist(),
        },
    }


def _per_intent(
    targets: np.ndarray, predicted: np.ndarray, present: list[int], names: list[str]
) -> dict[str, dict[str, float]]:
    report = classification_report(
        targets, predicted, labels=present, target_names=names, output_dict=True, zero_division=0
    )
    return {
        name: {
            "precision": report[name]["precision"],
            "recall": report[name]["recall"],
            "f1": report[name]["f1-score"],
            "support": int(report[name]["support"]),
        }
        for name in names
    }


def _no_fallback_outcome(predicted: np.ndarray, in_scope_targets: np.ndarray) -> dict[str, float]:
    in_scope = in_scope_targets >= 0
    return {
        "in_scope_accuracy": float((predicted == in_scope_targets)[in_scope].mean())
        if in_scope.any()
        else 0.0
    }


def _top_confusions(
    targets: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> list[dict[str, Any]]:
    pairs: dict[tuple[int, int], int] = {}
    for target, guess in zip(targets, predicted, strict=True):
        if target != guess:
            pairs[(int(target), int(guess))] = pairs.get((int(target), int(guess)), 0) + 1
    ranked = sorted(pairs.items(), key=lambda item: -item[1])[:TOP_CONFUSIONS]
    return [
        {"intent": _name(labels, t), "predicted": labels[p], "count": n} for (t, p), n in ranked
    ]


def _misclassified(
    texts: list[str], targets: np.ndarray, probabilities: np.ndarray, labels: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for i in np.flatnonzero(probabilities.argmax(axis=1) != targets):
        best = np.argsort(probabilities[i])[::-1][:3]
        rows.append(
            {
                "text": texts[i],
                "intent": _name(labels, targets[i]),
                "predicted": labels[best[0]],
                "confidence": round(float(probabilities[i, best[0]]), 4),
                "top": [
                    {"intent": labels[j], "probability": round(float(probabilities[i, j]), 4)}
                    for j in best
                ],
            }
        )
    return sorted(rows, key=lambda row: -row["confidence"])


def _name(labels: list[str], index: int) -> str:
    return labels[index] if index >= 0 else "(out of scope)"


def evaluate_retrieval(
    retriever: FaissRetriever, questions: Sequence[IntentExample], ks: Sequence[int] = RETRIEVAL_KS
) -> dict[str, Any]:
    """Recall@k and MRR@max(k) on held-out questions; a hit is a past pair of the same intent."""
    depth = max(ks)
    known = {row.intent for row in retriever.rows}
    questions = [q for q in questions if q.intent in known]
    if not questions:
        return {"questions": 0}
    found = retriever.search([q.text for q in questions], depth)
    ranks = [
        next((rank for rank, source in enumerate(sources, 1) if source.intent == q.intent), None)
        for q, sources in zip(questions, found, strict=True)
    ]
    return {
        "questions": len(questions),
        "relevance": "a retrieved past question with the same intent",
        **{f"recall@{k}": _share(r is not None and r <= k for r in ranks) for k in ks},
        f"mrr@{depth}": float(np.mean([1 / r if r else 0.0 for r in ranks])),
    }


def _share(flags: Any) -> float:
    values = list(flags)
    return float(sum(values) / len(values)) if values else 0.0


def embedding_map(
    classifier: BertIntentClassifier, examples: Sequence[IntentExample], seed: int = 0
) -> dict[str, Any]:
    """2-D t-SNE coordinates of the classifier's sentence embeddings, with their intents."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(examples), min(len(examples), MAP_POINTS), replace=False))
    sample = [examples[i] for i in chosen]
    vectors = classifier.embeddings([e.text for e in sample])
    perplexity = float(min(30, max(2, len(sample) - 1) / 3))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    return {"method": "t-SNE", "points": points.tolist(), "intents": [e.intent for e in sample]}

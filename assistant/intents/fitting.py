"""Step 3 of training (training.py): the temperature, the fallback and the known examples,
fitted on validation data; and how a classifier with its fallback measures on labelled
examples. Run again on the int8 form when that form will serve (`fit_to_int8`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant.core.settings import Settings
from assistant.datasets.loading import IntentExample
from assistant.intents.calibration import expected_calibration_error, fit_temperature, softmax
from assistant.intents.classifier import BertIntentClassifier, classification_metrics
from assistant.intents.familiarity import known_examples
from assistant.intents.rejection import choose_policy, outcome, target_indices


def remember_examples(
    classifier: BertIntentClassifier, examples: Sequence[IntentExample], oos_label: str | None
) -> None:
    """Make `examples`' embeddings the known examples familiarity is measured against."""
    classifier.known = known_examples(
        classifier.embeddings([e.text for e in examples]),
        [e.intent for e in examples],
        classifier.labels,
        oos_label,
    )


def calibrate(
    classifier: BertIntentClassifier,
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
) -> dict[str, Any]:
    """Fit the temperature and the fallback policy on validation data; return its figures.

    The training examples' embeddings become the classifier's known examples, against
    which the familiarity of every message is measured.
    """
    oos_label = settings.out_of_scope_label
    remember_examples(classifier, train, oos_label)
    logits, embeddings = classifier.scores([e.text for e in validation])
    familiarity = classifier.known.nearest(embeddings)[0]
    label_ids = {label: index for index, label in enumerate(classifier.labels)}
    targets = np.array([label_ids[e.intent] for e in validation])
    before = expected_calibration_error(softmax(logits), targets)
    classifier.temperature = fit_temperature(logits, targets)
    probabilities = softmax(logits / classifier.temperature)
    in_scope = target_indices([e.intent for e in validation], classifier.labels, oos_label)
    policy = choose_policy(
        probabilities,
        in_scope,
        classifier.labels,
        settings.max_accuracy_loss,
        oos_label,
        per_intent=settings.per_intent_thresholds,
        familiarity=familiarity,
        familiarity_quantile=settings.familiarity_quantile,
    )
    classifier.rejection = policy
    classifier.metadata["temperature"] = classifier.temperature
    classifier.metadata["rejection"] = policy.to_dict()
    return {
        "validation": {
            **classification_metrics(logits.argmax(1), targets),
            "ece_before_calibration": before,
            "ece_after_calibration": expected_calibration_error(probabilities, targets),
            "temperature": classifier.temperature,
            "with_fallback": outcome(
                probabilities, in_scope, classifier.labels, policy, oos_label, familiarity
            ).__dict__,
        }
    }


def measure(
    classifier: BertIntentClassifier, examples: Sequence[IntentExample], oos_label: str | None
) -> dict[str, Any]:
    """Accuracy and macro-F1 (every label) and the fallback outcome on labelled examples."""
    classifier.check_known([e.intent for e in examples], oos_label)
    logits, embeddings = classifier.scores([e.text for e in examples])
    probabilities = softmax(logits / classifier.temperature)
    nearest = classifier.familiarity(embeddings)
    in_scope = target_indices([e.intent for e in examples], classifier.labels, oos_label)
    label_ids = {label: index for index, label in enumerate(classifier.labels)}
    targets = np.array([label_ids.get(e.intent, -1) for e in examples])
    return {
        **classification_metrics(probabilities.argmax(1), targets),
        "with_fallback": outcome(
            probabilities,
            in_scope,
            classifier.labels,
            classifier.rejection,
            oos_label,
            None if nearest is None else nearest[0],
        ).__dict__,
    }

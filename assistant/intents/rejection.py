"""Knowing what it does not know: when the top intent is not trusted.

The top intent is accepted when its calibrated probability clears a threshold
(one for all intents, or one per intent) and leads the runner-up by a margin, as
Rasa's `FallbackClassifier` does, and when the message is familiar: close enough
to an example the classifier learned (`familiarity.py`). The values are chosen
on validation data only:

- with out-of-scope examples in the validation data, the threshold, margin and
  familiarity that together stop the most wrong answers (out-of-scope messages
  answered, in-scope ones answered with the wrong intent) while giving up at
  most `max_accuracy_loss` of in-scope accuracy;
- with none (most companies have none), the familiarity is the value that
  `familiarity_quantile` of in-scope validation messages fall below, since only
  known messages can be measured, and the threshold and margin are chosen as
  above on what remains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assistant.intents.familiarity import quantile_threshold

THRESHOLD_GRID = np.round(np.arange(0.0, 0.96, 0.01), 2)
MARGIN_GRID = np.round(np.arange(0.0, 0.51, 0.02), 2)
# Familiarity candidates: the in-scope validation messages' own values at these quantiles.
FAMILIARITY_QUANTILES = np.round(np.arange(0.0, 0.301, 0.005), 3)
OUT_OF_SCOPE = -1  # target index of a message that belongs to no intent
NOT_MEASURED = -1.0  # a familiarity threshold every message passes


@dataclass(frozen=True)
class RejectionPolicy:
    threshold: float
    margin: float
    per_intent: dict[str, float] = field(default_factory=dict)
    familiarity: float = NOT_MEASURED  # the nearest known example's cosine must reach this

    def threshold_for(self, intent: str) -> float:
        return self.per_intent.get(intent, self.threshold)

    def accepts(
        self,
        probabilities: np.ndarray,
        labels: list[str],
        familiarity: np.ndarray | None = None,
    ) -> np.ndarray:
        """For each row, whether its top intent is trusted."""
        top, runner_up = top_two(probabilities)
        best = probabilities.argmax(axis=1)
        thresholds = np.array([self.threshold_for(label) for label in labels])[best]
        confident = (top >= thresholds) & (top - runner_up >= self.margin)
        return confident & self.familiar(familiarity, len(probabilities))

    def familiar(self, familiarity: np.ndarray | None, count: int) -> np.ndarray:
        if familiarity is None:
            return np.ones(count, dtype=bool)
        return familiarity >= self.familiarity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RejectionPolicy:
        return cls(
            float(data["threshold"]),
            float(data["margin"]),
            {k: float(v) for k, v in data.get("per_intent", {}).items()},
            float(data.get("familiarity", NOT_MEASURED)),
        )


@dataclass(frozen=True)
class Outcome:
    """How a policy does on labelled messages (out-of-scope ones have target -1)."""

    in_scope_accuracy: float  # answered with the right intent / in-scope messages
    out_of_scope_recall: float | None  # refused / out-of-scope messages (None: there were none)
    wrong_answers_stopped: float | None  # refused / messages whose answer would be wrong
    answered: float  # share of all messages answered


def top_two(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if probabilities.shape[1] == 1:
        return probabilities[:, 0], np.zeros(len(probabilities))
    ordered = np.sort(probabilities, axis=1)
    return ordered[:, -1], ordered[:, -2]


def outcome(
    probabilities: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    policy: RejectionPolicy,
    out_of_scope_label: str | None = None,
    familiarity: np.ndarray | None = None,
) -> Outcome:
    accepted = policy.accepts(probabilities, labels, familiarity) & answerable(
        probabilities, labels, out_of_scope_label
    )
    return _outcome(accepted, probabilities.argmax(axis=1), targets)


def answerable(
    probabilities: np.ndarray, labels: list[str], out_of_scope_label: str | None
) -> np.ndarray:
    """False where the top intent is the trained out-of-scope class itself."""
    if out_of_scope_label is None or out_of_scope_label not in labels:
        return np.ones(len(probabilities), dtype=bool)
    return probabilities.argmax(axis=1) != labels.index(out_of_scope_label)


def _outcome(accepted: np.ndarray, predicted: np.ndarray, targets: np.ndarray) -> Outcome:
    in_scope = targets != OUT_OF_SCOPE
    right = predicted == targets
    wrong = ~right
    return Outcome(
        in_scope_accuracy=_share(accepted & right & in_scope, in_scope),
        out_of_scope_recall=_share(~accepted & ~in_scope, ~in_scope) if (~in_scope).any() else None,
        wrong_answers_stopped=_share(~accepted & wrong, wrong) if wrong.any() else None,
        answered=float(accepted.mean()) if len(accepted) else 0.0,
    )


def _share(hits: np.ndarray, among: np.ndarray) -> float:
    return float(hits.sum() / among.sum()) if among.any() else 0.0


def choose_policy(
    probabilities: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    max_accuracy_loss: float,
    out_of_scope_label: str | None = None,
    per_intent: bool = False,
    familiarity: np.ndarray | None = None,
    familiarity_quantile: float = 0.005,
) -> RejectionPolicy:
    """The threshold, margin and familiarity that stop the most wrong answers within the
    accuracy budget (see the module docstring).

    `targets` are label indices, with -1 for every out-of-scope message (whether or
    not the out-of-scope label is a trained class). Ties go to the lower threshold,
    margin and familiarity (more answers).
    """
    predicted = probabilities.argmax(axis=1)
    top, runner_up = top_two(probabilities)
    gap = top - runner_up
    can_answer = answerable(probabilities, labels, out_of_scope_label)
    right = (predicted == targets) & can_answer
    wrong = can_answer & ~right  # would be a wrong answer if accepted
    in_scope = targets != OUT_OF_SCOPE
    budget = max_accuracy_loss * in_scope.sum()
    best = (-1, 0.0, 0.0, NOT_MEASURED)
    for least_familiar in _familiarity_candidates(familiarity, in_scope, familiarity_quantile):
        familiar = (
            np.ones(len(top), dtype=bool) if familiarity is None else familiarity >= least_familiar
        )
        # Without out-of-scope examples the familiarity is fixed beforehand, and the threshold
        # and margin get the whole budget on the messages it keeps.
        floor = (right & familiar).sum() - budget if in_scope.all() else right.sum() - budget
        for threshold in THRESHOLD_GRID:
            confident = familiar & (top >= threshold)
            for margin in MARGIN_GRID:
                accepted = confident & (gap >= margin)
                if (accepted & right).sum() < floor:
                    continue
                stopped = int((~accepted & wrong).sum())
                if stopped > best[0]:
                    best = (stopped, float(threshold), float(margin), least_familiar)
    policy = RejectionPolicy(best[1], best[2], familiarity=best[3])
    if not per_intent:
        return policy
    familiar = policy.familiar(familiarity, len(top))
    floor = right.sum() - budget
    thresholds = _per_intent_thresholds(
        policy, len(labels), top, gap, predicted, right & familiar, wrong & familiar, floor
    )
    return RejectionPolicy(
        policy.threshold,
        policy.margin,
        dict(zip(labels, thresholds, strict=True)),
        policy.familiarity,
    )


def _familiarity_candidates(
    familiarity: np.ndarray | None, in_scope: np.ndarray, quantile: float
) -> list[float]:
    """The familiarity thresholds to try: none when it is not measured; the in-scope
    quantile alone without out-of-scope examples; a range of quantiles with them."""
    if familiarity is None:
        return [NOT_MEASURED]
    known = familiarity[in_scope]
    if in_scope.all():
        return [quantile_threshold(known, quantile)]
    return sorted({NOT_MEASURED, *(quantile_threshold(known, q) for q in FAMILIARITY_QUANTILES)})


def _per_intent_thresholds(
    policy: RejectionPolicy,
    count: int,
    top: np.ndarray,
    gap: np.ndarray,
    predicted: np.ndarray,
    right: np.ndarray,
    wrong: np.ndarray,
    floor: float,
) -> list[float]:
    """Raise or lower each intent's threshold in turn, keeping the accuracy budget."""
    thresholds = [policy.threshold] * count
    margin_ok = gap >= policy.margin
    kept_right = int((right & margin_ok & (top >= policy.threshold)).sum())
    for intent in range(len(thresholds)):
        mine = (predicted == intent) & margin_ok
        current = top[mine] >= thresholds[intent]
        base_right = kept_right - int((current & right[mine]).sum())
        best_gain, best_threshold = 0, thresholds[intent]
        for threshold in THRESHOLD_GRID:
            accepted = top[mine] >= threshold
            if base_right + (accepted & right[mine]).sum() < floor:
                continue
            gain = int((current & wrong[mine] & ~accepted).sum()) - int(
                (~current & wrong[mine] & accepted).sum()
            )
            if gain > best_gain:
                best_gain, best_threshold = gain, float(threshold)
        kept_right = base_right + int((top[mine] >= best_threshold)[right[mine]].sum())
        thresholds[intent] = best_threshold
    return thresholds


def target_indices(
    intents: list[str], labels: list[str], out_of_scope_label: str | None
) -> np.ndarray:
    """Label indices for `intents`, with -1 for out-of-scope and unknown intents."""
    index = {label: i for i, label in enumerate(labels) if label != out_of_scope_label}
    return np.array([index.get(intent, OUT_OF_SCOPE) for intent in intents], dtype=int)

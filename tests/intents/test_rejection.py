import numpy as np
import pytest

from assistant.intents.rejection import (
    OUT_OF_SCOPE,
    RejectionPolicy,
    choose_policy,
    outcome,
    target_indices,
)

LABELS = ["a", "b", "c"]


def _rows(*rows):
    return np.array(rows, dtype=float)


def test_policy_accepts_only_confident_and_distinct_tops():
    policy = RejectionPolicy(threshold=0.6, margin=0.2)
    probabilities = _rows([0.9, 0.05, 0.05], [0.55, 0.4, 0.05], [0.62, 0.38, 0.0])
    assert policy.accepts(probabilities, LABELS).tolist() == [True, False, True]


def test_per_intent_threshold_overrides_the_global_one():
    policy = RejectionPolicy(threshold=0.6, margin=0.0, per_intent={"a": 0.95})
    probabilities = _rows([0.9, 0.05, 0.05], [0.05, 0.9, 0.05])
    assert policy.accepts(probabilities, LABELS).tolist() == [False, True]
    assert RejectionPolicy.from_dict(policy.to_dict()) == policy


def _validation_set(rng, in_scope=300, out_of_scope=60):
    """Confident right answers, a few unsure wrong ones, and unsure out-of-scope messages."""
    targets = rng.integers(0, 3, size=in_scope)
    probabilities = np.full((in_scope, 3), 0.02)
    probabilities[np.arange(in_scope), targets] = 0.96
    wrong = np.arange(0, in_scope, 30)  # 10 unsure mistakes
    probabilities[wrong] = [0.5, 0.3, 0.2]
    targets[wrong] = 2
    unsure = rng.dirichlet([2, 2, 2], size=out_of_scope) * 0.8 + 0.2 / 3
    return np.vstack([probabilities, unsure]), np.concatenate(
        [targets, np.full(out_of_scope, OUT_OF_SCOPE)]
    )


def test_chosen_policy_refuses_unsure_messages_and_keeps_sure_ones():
    probabilities, targets = _validation_set(np.random.default_rng(0))
    policy = choose_policy(probabilities, targets, LABELS, max_accuracy_loss=0.01)
    result = outcome(probabilities, targets, LABELS, policy)
    assert result.out_of_scope_recall == 1.0
    assert result.wrong_answers_stopped == 1.0
    assert result.in_scope_accuracy == pytest.approx(290 / 300)  # every right answer kept
    assert policy.threshold > 0.5


def test_accuracy_budget_is_respected():
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet([1, 1, 1], size=400)
    targets = probabilities.argmax(axis=1)  # always right, but often unsure
    targets[:100] = OUT_OF_SCOPE
    in_scope = 300
    for budget in (0.0, 0.05, 0.2):
        policy = choose_policy(probabilities, targets, LABELS, max_accuracy_loss=budget)
        result = outcome(probabilities, targets, LABELS, policy)
        assert result.in_scope_accuracy >= 1.0 - budget - 1 / in_scope
    loose = choose_policy(probabilities, targets, LABELS, max_accuracy_loss=0.2)
    strict = choose_policy(probabilities, targets, LABELS, max_accuracy_loss=0.0)
    assert (
        outcome(probabilities, targets, LABELS, loose).out_of_scope_recall
        > outcome(probabilities, targets, LABELS, strict).out_of_scope_recall
    )


def test_per_intent_thresholds_catch_what_one_shared_threshold_cannot():
    # Right answers for "a" are only 70% sure, so a shared threshold must stay low; the
    # out-of-scope messages look like 80%-sure "c" predictions, while right "c" ones are 96%.
    rows = [[0.7, 0.15, 0.15]] * 100 + [[0.02, 0.96, 0.02]] * 100 + [[0.02, 0.02, 0.96]] * 100
    probabilities = np.array(rows + [[0.1, 0.1, 0.8]] * 60)
    targets = np.array([0] * 100 + [1] * 100 + [2] * 100 + [OUT_OF_SCOPE] * 60)
    shared = choose_policy(probabilities, targets, LABELS, 0.01)
    own = choose_policy(probabilities, targets, LABELS, 0.01, per_intent=True)
    assert outcome(probabilities, targets, LABELS, shared).out_of_scope_recall == 0.0
    assert own.per_intent["c"] > 0.8
    result = outcome(probabilities, targets, LABELS, own)
    assert result.out_of_scope_recall == 1.0
    assert result.in_scope_accuracy == 1.0


def test_a_trained_out_of_scope_class_counts_as_refusal():
    labels = ["a", "b", "oos"]
    probabilities = _rows([0.9, 0.05, 0.05], [0.05, 0.05, 0.9])
    targets = target_indices(["a", "oos"], labels, "oos")
    assert targets.tolist() == [0, OUT_OF_SCOPE]
    result = outcome(probabilities, targets, labels, RejectionPolicy(0.0, 0.0), "oos")
    assert result.in_scope_accuracy == 1.0
    assert result.out_of_scope_recall == 1.0
    assert result.answered == 0.5


def test_no_out_of_scope_messages_means_no_recall_figure():
    probabilities = _rows([0.9, 0.05, 0.05])
    result = outcome(probabilities, np.array([0]), LABELS, RejectionPolicy(0.5, 0.1))
    assert result.out_of_scope_recall is None
    assert result.wrong_answers_stopped is None

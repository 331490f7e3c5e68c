"""The familiarity check: nearest known example, and its threshold chosen on validation."""

import numpy as np

from assistant.intents.familiarity import KnownExamples, known_examples, quantile_threshold
from assistant.intents.rejection import NOT_MEASURED, RejectionPolicy, choose_policy

LABELS = ["a", "b", "out_of_scope"]


def _unit(rows):
    rows = np.array(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_nearest_known_example_gives_the_cosine_and_its_intent(tmp_path):
    known = known_examples(
        _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), ["a", "b", "out_of_scope"], LABELS, "out_of_scope"
    )
    assert len(known.embeddings) == 2  # a trained out-of-scope example makes nothing familiar
    similarity, intent = known.nearest(_unit([[1, 0.1, 0], [0, 0, 1]]))
    assert intent[0] == 0 and similarity[0] > 0.99
    assert abs(similarity[1]) < 1e-6  # far from both in-scope examples
    known.save(tmp_path)
    again = KnownExamples.load(tmp_path)
    assert np.allclose(again.nearest(_unit([[1, 0.1, 0]]))[0], similarity[0], atol=1e-3)
    assert KnownExamples.load(tmp_path / "missing") is None


def _confident(rows):
    probabilities = np.full((rows, 2), 0.02)
    probabilities[:, 0] = 0.98
    return probabilities


def test_without_out_of_scope_examples_the_familiarity_is_a_low_quantile_of_known_ones():
    rng = np.random.default_rng(0)
    familiarity = rng.uniform(0.5, 1.0, size=400)
    targets = np.zeros(400, dtype=int)
    policy = choose_policy(
        _confident(400), targets, LABELS[:2], 0.01, familiarity=familiarity,
        familiarity_quantile=0.02,
    )  # fmt: skip
    assert policy.familiarity == quantile_threshold(familiarity, 0.02)
    kept = RejectionPolicy(policy.threshold, policy.margin, {}, policy.familiarity)
    assert 0.97 <= kept.accepts(_confident(400), LABELS[:2], familiarity).mean() <= 0.99


def test_with_out_of_scope_examples_the_familiarity_that_stops_them_is_chosen():
    """Out-of-scope messages the softmax is sure of, but far from every known example."""
    rng = np.random.default_rng(1)
    known = rng.uniform(0.7, 1.0, size=300)
    strangers = rng.uniform(0.2, 0.5, size=100)
    probabilities = _confident(400)
    targets = np.array([0] * 300 + [-1] * 100)
    familiarity = np.concatenate([known, strangers])
    policy = choose_policy(probabilities, targets, LABELS[:2], 0.01, familiarity=familiarity)
    accepted = policy.accepts(probabilities, LABELS[:2], familiarity)
    assert not accepted[300:].any()  # every stranger refused
    assert accepted[:300].mean() >= 0.99
    blind = choose_policy(probabilities, targets, LABELS[:2], 0.01)
    assert blind.familiarity == NOT_MEASURED
    assert blind.accepts(probabilities, LABELS[:2])[300:].all()  # confidence alone cannot


def test_a_policy_saved_before_familiarity_loads_with_it_off():
    policy = RejectionPolicy.from_dict({"threshold": 0.4, "margin": 0.1})
    assert policy.familiarity == NOT_MEASURED
    assert policy.accepts(_confident(2), LABELS[:2], np.array([-0.5, 0.9])).all()

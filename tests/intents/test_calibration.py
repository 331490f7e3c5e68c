import numpy as np

from assistant.intents.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)


def test_temperature_scaling_reduces_calibration_error():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, size=2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), targets] += 1.0  # right about 60% of the time...
    overconfident = logits * 6  # ...but sure of itself nearly always
    before = expected_calibration_error(softmax(overconfident), targets)
    temperature = fit_temperature(overconfident, targets)
    after = expected_calibration_error(softmax(overconfident / temperature), targets)
    assert temperature > 3
    assert after < before / 3


def test_underconfident_scores_get_a_temperature_below_one():
    targets = np.arange(300) % 3
    logits = np.full((300, 3), 0.0)
    logits[np.arange(300), targets] = 1.0  # always right, but only ~58% sure
    assert fit_temperature(logits, targets) < 0.5


def test_calibration_error_of_a_perfect_classifier_is_zero():
    targets = np.array([0, 1, 2])
    assert expected_calibration_error(np.eye(3), targets) == 0.0


def test_reliability_bins_count_every_prediction():
    rng = np.random.default_rng(1)
    probabilities = softmax(rng.normal(size=(500, 4)) * 3)
    targets = rng.integers(0, 4, size=500)
    bins = reliability_bins(probabilities, targets)
    assert sum(b.count for b in bins) == 500
    assert all(b.low < b.confidence <= b.high for b in bins)
    assert all(0 <= b.accuracy <= 1 for b in bins)

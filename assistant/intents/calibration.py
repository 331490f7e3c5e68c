"""Confidence calibration: temperature scaling and the expected calibration error.

A classifier is calibrated when, of the answers it gives with 80 % confidence,
80 % are right. Thresholds on confidence only mean what they say when this holds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

CALIBRATION_BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float  # mean confidence of the predictions in the bin
    accuracy: float  # share of them that were right


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponent = np.exp(shifted)
    return exponent / exponent.sum(axis=-1, keepdims=True)


def reliability_bins(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[ReliabilityBin]:
    """Top-1 confidence against accuracy, in equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    result = []
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            result.append(
                ReliabilityBin(
                    float(low),
                    float(high),
                    int(in_bin.sum()),
                    float(confidence[in_bin].mean()),
                    float(correct[in_bin].mean()),
                )
            )
    return result


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The gap between confidence and accuracy, averaged over confidence bins."""
    total = len(targets)
    if total == 0:
        return 0.0
    bins = reliability_bins(probabilities, targets)
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises validation log-loss (Guo et al., 2017)."""
    import torch  # training only: a server need not import PyTorch

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

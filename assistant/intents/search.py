"""Hyperparameter search for the intent classifier, scored on validation data only.

Each Optuna trial fits a model on the training split with sampled settings and is
scored by its validation accuracy (macro-F1 breaks ties); the test split, if any,
is only touched by the winner, after the search. Trials do not refit; the winner
is refit on train + validation afterwards when `refit_on_validation` is on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from assistant.core.settings import Settings
from assistant.datasets.loading import IntentExample
from assistant.intents.training import FittedModel, fit_intent_classifier, refit_on_validation


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    validation_accuracy: float
    validation_macro_f1: float
    minutes: float

    def row(self) -> str:
        params = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return (
            f"trial {self.number:>2}: accuracy {self.validation_accuracy:.4f}  "
            f"macro-F1 {self.validation_macro_f1:.4f}  {self.minutes:5.1f} min  {params}"
        )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def sample_settings(trial: optuna.Trial, base: Settings) -> Settings:
    """The search space: the recipe settings that mattered most in our measurements."""
    return base.model_copy(
        update={
            "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-4, log=True),
            "head_learning_rate": trial.suggest_float("head_learning_rate", 1e-4, 5e-3, log=True),
            "epochs": trial.suggest_int("epochs", 2, 8),
            "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
        }
    )


def search(
    train: Sequence[IntentExample],
    validation: Sequence[IntentExample],
    settings: Settings,
    data_checksum: str,
    trials: int,
    announce: Any = print,
) -> tuple[FittedModel, list[Trial]]:
    """Run `trials` trials; return the best fitted model and every trial, in order."""
    best: dict[str, Any] = {}
    history: list[Trial] = []

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        sampled = sample_settings(trial, settings)
        fitted = fit_intent_classifier(
            train, validation, sampled, data_checksum, fresh=True, refit=False
        )
        figures = fitted.metrics["validation"]
        score = figures["accuracy"] + 1e-3 * figures["macro_f1"]
        record = Trial(
            trial.number,
            dict(trial.params),
            figures["accuracy"],
            figures["macro_f1"],
            (time.perf_counter() - started) / 60,
        )
        history.append(record)
        announce(record.row())
        if not best or score > best["score"]:
            best.update(score=score, fitted=fitted, settings=sampled)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed)
    )
    study.optimize(objective, n_trials=trials)
    if settings.refit_on_validation and validation:
        announce("Refitting the best trial's recipe on train + validation")
        refit = refit_on_validation(
            best["fitted"], train, validation, best["settings"], data_checksum
        )
        return refit, history
    return best["fitted"], history

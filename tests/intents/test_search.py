import optuna

from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import load_dataset
from assistant.intents.search import sample_settings, search


def test_sampled_settings_stay_in_the_search_space(built_settings):
    trial = optuna.trial.FixedTrial(
        {
            "learning_rate": 3e-5,
            "head_learning_rate": 1e-3,
            "epochs": 3,
            "label_smoothing": 0.05,
            "weight_decay": 0.02,
        }
    )
    settings = sample_settings(trial, built_settings)
    assert (settings.learning_rate, settings.epochs, settings.label_smoothing) == (3e-5, 3, 0.05)
    assert settings.data_dir == built_settings.data_dir  # everything else is kept


def test_search_reports_every_trial_and_keeps_the_best(built_settings, tmp_path):
    splits = dataset_splits(load_dataset(built_settings.data_dir), built_settings)
    settings = built_settings.model_copy(
        update={"models_dir": tmp_path, "refit_on_validation": True}
    )
    lines = []
    fitted, trials = search(
        splits.train, splits.validation, settings, "sum", trials=2, announce=lines.append
    )
    assert [t.number for t in trials] == [0, 1]
    assert len(lines) == 3 and all("accuracy" in line for line in lines[:2])
    assert "Refitting" in lines[2] and fitted.held_out is not None  # only the winner is refit
    best = max(trials, key=lambda t: (t.validation_accuracy, t.validation_macro_f1))
    assert fitted.metrics["validation"]["accuracy"] == best.validation_accuracy
    assert fitted.classifier.metadata["recipe"]["epochs"] == best.params["epochs"]

import shutil

from assistant.datasets.loading import load_dataset
from assistant.lifecycle.build import (
    ensure_artifacts,
    generator_staleness,
    index_staleness,
    intent_model_staleness,
    recipe_change,
)
from assistant.retrieval.index import INDEX_FILE, index_path


def test_a_second_run_reuses_everything(built_settings):
    dataset = load_dataset(built_settings.data_dir)
    assert ensure_artifacts(dataset, built_settings, announce=lambda _: None) == []


def test_changed_examples_make_the_intent_model_stale(built_settings, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(built_settings.data_dir, data)
    with (data / "intents.csv").open("a", encoding="utf-8") as file:
        file.write("how much for shipping to my door,shipping_cost\n")
    changed = built_settings.model_copy(update={"data_dir": data})
    reason = intent_model_staleness(load_dataset(data), changed)
    assert reason == "the intent examples changed since it was trained"
    assert index_staleness(load_dataset(data), changed) is None


def test_another_base_model_makes_the_intent_model_stale(built_settings):
    other = built_settings.model_copy(update={"intent_base_model": "bert-base-uncased"})
    reason = intent_model_staleness(load_dataset(built_settings.data_dir), other)
    assert "configured 'bert-base-uncased'" in reason


def test_missing_or_damaged_index_is_reported(built_settings, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(built_settings.index_dir, index_dir)
    moved = built_settings.model_copy(update={"index_dir": index_dir})
    dataset = load_dataset(built_settings.data_dir)
    assert index_staleness(dataset, moved) is None
    (index_path(moved.qa_index_dir) / INDEX_FILE).unlink()
    assert "index.faiss is missing" in index_staleness(dataset, moved)
    assert (
        intent_model_staleness(
            dataset, built_settings.model_copy(update={"models_dir": tmp_path / "none"})
        )
        == "no trained intent model"
    )


def test_the_generator_is_stale_when_its_data_or_settings_change(built_settings, tmp_path):
    dataset = load_dataset(built_settings.data_dir)
    assert generator_staleness(dataset, built_settings) is None
    more_layers = built_settings.model_copy(update={"generator_layers": 2})
    assert generator_staleness(dataset, more_layers) == (
        "the generator settings changed since it was trained"
    )
    dataset.qa_pairs.pop()
    assert generator_staleness(dataset, built_settings) == (
        "the Q&A pairs changed since it was trained"
    )
    turned_off = built_settings.model_copy(update={"generator_enabled": False})
    assert generator_staleness(dataset, turned_off) is None
    elsewhere = built_settings.model_copy(update={"models_dir": tmp_path})
    assert generator_staleness(dataset, elsewhere) == "no trained answer generator"


def test_a_changed_training_recipe_makes_each_artifact_stale_alike(built_settings):
    dataset = load_dataset(built_settings.data_dir)
    epochs = built_settings.epochs
    other_epochs = built_settings.model_copy(update={"epochs": epochs + 1})
    assert intent_model_staleness(dataset, other_epochs) == (
        "the intent model settings changed since it was trained"
    )
    layers = built_settings.generator_layers
    deeper = built_settings.model_copy(update={"generator_layers": layers + 1})
    assert generator_staleness(dataset, deeper) == (
        "the generator settings changed since it was trained"
    )
    embedded = built_settings.model_copy(update={"embedding_model": "other-encoder"})
    assert index_staleness(dataset, embedded) == "the index settings changed since it was built"
    # Settings outside every recipe, such as routing thresholds, rebuild nothing.
    stricter = built_settings.model_copy(update={"retrieval_threshold": 0.9})
    assert intent_model_staleness(dataset, stricter) is None
    assert generator_staleness(dataset, stricter) is None
    assert index_staleness(dataset, stricter) is None


def test_a_recipe_says_what_changed_and_ignores_what_it_never_recorded():
    """The detail goes to the log (`recipe_changed`), the reason stays one sentence."""
    recorded = {"recipe": {"epochs": 7, "seed": 13}}
    assert recipe_change(recorded, {"epochs": 7, "seed": 13, "bf16": False}) is None
    assert recipe_change(recorded, {"epochs": 3, "seed": 13}) == (
        "built with epochs=7; the settings say epochs=3"
    )
    assert recipe_change({}, {"epochs": 3}) is None  # built before recipes were recorded

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.core.base_models import pick_device, resolve_model_path
from assistant.core.errors import ConfigError
from assistant.core.settings import Settings, load_settings


def test_defaults_point_at_the_bundled_model(monkeypatch):
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    settings = Settings()
    assert (Path(resolve_model_path(settings.intent_base_model)) / "config.json").is_file()
    assert settings.data_dir == Path("data")


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("ASSISTANT_INTENT_THRESHOLD", "0.7")
    monkeypatch.setenv("ASSISTANT_HANDOFF_INTENTS", '["human_agent", "complaint"]')
    settings = Settings()
    assert settings.intent_threshold == 0.7
    assert settings.handoff_intents == ["human_agent", "complaint"]


def test_toml_file_is_read_and_arguments_win(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    config = tmp_path / "assistant.toml"
    config.write_text('intent_base_model = "bert-base-uncased"\nport = 9000\n', encoding="utf-8")
    settings = load_settings(config, port=9100)
    assert settings.intent_base_model == "bert-base-uncased"
    assert settings.port == 9100
    assert "ASSISTANT_CONFIG" not in os.environ
    assert load_settings().intent_base_model == "all-MiniLM-L6-v2"


def test_config_file_named_by_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "other.toml"
    config.write_text("retrieval_threshold = 0.9\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    assert load_settings().retrieval_threshold == 0.9


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_values_are_refused():
    with pytest.raises(ValidationError):
        Settings(intent_threshold=1.5)
    with pytest.raises(ValidationError):
        Settings(unknown_setting=1)
    with pytest.raises(ValidationError, match="'helpdesk' is neither an email"):
        Settings(public_contacts=["helpdesk"])


def test_other_model_names_pass_through_unchanged(tmp_path):
    assert resolve_model_path("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_auto_device_falls_back_to_cpu_without_cuda():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto") == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")


def test_each_component_reads_its_own_section():
    settings = Settings(retrieval_threshold=0.7, generator_layers=5, users=[])
    assert settings.routing.retrieval_threshold == 0.7
    assert settings.generator.layers == 5  # the section drops the generator_ prefix
    assert settings.access.users == []
    assert set(type(settings.routing).model_fields) == {
        "retrieval_threshold",
        "generation_threshold",
        "fallback_retrieval_threshold",
        "handoff_intents",
        "top_k_intents",
        "top_k_sources",
        "always_human_intents",
        "misunderstood_before_handoff",
        "familiarity_threshold",
        "support_hours",
        "clarify_below",
        "clarify_margin",
        "low_confidence_below",
    }
    with pytest.raises(ValidationError):  # a section is a view: set the settings instead
        settings.routing.retrieval_threshold = 0.1


def test_sectioned_and_flat_names_are_both_accepted(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    config = tmp_path / "assistant.toml"
    config.write_text(
        "port = 9000\n[routing]\nretrieval_threshold = 0.75\n[generator]\nlayers = 2\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert (settings.port, settings.retrieval_threshold, settings.generator_layers) == (
        9000,
        0.75,
        2,
    )
    assert Settings(intents={"epochs": 2}).epochs == 2


def test_sectioned_environment_names_and_their_priority(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    config = tmp_path / "assistant.toml"
    config.write_text("[routing]\nretrieval_threshold = 0.75\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_ROUTING__RETRIEVAL_THRESHOLD", "0.6")
    monkeypatch.setenv("ASSISTANT_ROUTING__HANDOFF_INTENTS", '["complaint"]')
    settings = load_settings(config)
    assert settings.retrieval_threshold == 0.6  # the environment over the file
    assert settings.handoff_intents == ["complaint"]
    assert load_settings(config, retrieval_threshold=0.9).retrieval_threshold == 0.9


def test_an_unknown_sectioned_setting_is_refused(tmp_path):
    config = tmp_path / "assistant.toml"
    config.write_text("[routing]\nretreival_threshold = 0.75\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routing\.retreival_threshold"):
        load_settings(config)

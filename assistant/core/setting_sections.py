"""Settings sections: each component reads a view of the settings it uses.

`SECTIONS` names them. Every setting may be given by its flat name
(`retrieval_threshold = 0.82`) or in its section (`[routing]` then
`retrieval_threshold = 0.82`; `ASSISTANT_ROUTING__RETRIEVAL_THRESHOLD`).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic_settings import PydanticBaseSettingsSource, TomlConfigSettingsSource

from assistant.core.errors import ConfigError

# Each component reads its own section: a view of the settings it uses, named here. The
# flat names (`retrieval_threshold = 0.82`) and the sectioned ones (`[routing]` then
# `retrieval_threshold = 0.82`; `ASSISTANT_ROUTING__RETRIEVAL_THRESHOLD`) are both accepted.
SECTIONS: dict[str, dict[str, str]] = {
    "paths": {
        name: name
        for name in ("data_dir", "models_dir", "index_dir", "database_path", "database_url")
    },
    "models": {
        name: name
        for name in (
            "intent_base_model", "embedding_model", "device", "faiss_gpu", "encoder_runtime",
            "int8_accuracy_tolerance", "int8_mrr_tolerance",
        )
    },
    "retrieval": {
        name: name
        for name in (
            "exact_index_max_rows", "approximate_index", "hnsw_m", "hnsw_ef_construction",
            "hnsw_ef_search", "ivf_nprobe",
        )
    },
    "intents": {
        name: name
        for name in (
            "epochs", "batch_size", "learning_rate", "head_learning_rate", "weight_decay",
            "warmup_ratio", "label_smoothing", "probe_regularisation", "freeze_word_embeddings",
            "bf16", "early_stopping_patience", "refit_on_validation", "validation_fraction",
            "max_length", "seed",
            "out_of_scope_label", "intent_threshold", "ambiguity_margin", "max_accuracy_loss",
            "familiarity_quantile", "per_intent_thresholds", "intent_int8",
        )
    },
    "generator": {
        **{
            name: f"generator_{name}"
            for name in (
                "enabled", "base_model", "layers", "hidden_size", "heads", "vocab_size",
                "epochs", "batch_size", "learning_rate", "context_answers", "context_tokens",
                "question_tokens", "answer_tokens", "repeat_ngram", "decoding", "runtime",
                "int8",
            )
        },
        "grounding_quantile": "grounding_quantile",
    },
    "routing": {
        name: name
        for name in (
            "retrieval_threshold", "generation_threshold", "fallback_retrieval_threshold",
            "handoff_intents", "top_k_intents", "top_k_sources", "low_confidence_below",
            "always_human_intents", "misunderstood_before_handoff", "familiarity_threshold",
            "support_hours", "clarify_below", "clarify_margin",
        )
    },
    "serving": {
        name: name
        for name in (
            "max_message_chars", "max_request_bytes", "host", "port", "reload_check_seconds",
            "rate_per_conversation", "rate_per_address", "page_events_per_session",
            "page_events_per_address", "rate_limit_exempt", "trusted_proxies",
            "max_waiting_chats", "queue_max_size", "phone_regions",
            "batch_max_messages", "batch_wait_ms", "model_threads", "generation_workers",
            "generation_queue", "chat_concurrency",
        )
    },
    "access": {
        name: name
        for name in (
            "users", "api_keys", "metrics_need_api_key", "sign_in_attempts",
            "sign_in_window_seconds", "sign_in_rate_per_address", "sign_in_concurrency",
            "session_hours", "secure_cookies", "allowed_origins",
        )
    },
}  # fmt: skip


def flatten_sections(values: dict[str, Any]) -> dict[str, Any]:
    """Sectioned settings (`{"routing": {"retrieval_threshold": 0.8}}`) as flat names; a
    flat name given beside its section wins."""
    flat = {key: value for key, value in values.items() if key not in SECTIONS}
    for section, names in SECTIONS.items():
        given = values.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise ConfigError(f"settings section {section!r} must be a table of settings")
        for name, value in given.items():
            if name not in names:
                raise ConfigError(f"unknown setting {section}.{name}; see the README")
            flat.setdefault(names[name], value)
    return flat


class SectionedToml(TomlConfigSettingsSource):
    """The TOML file, where settings may stand at the top or in their section's table."""

    def __call__(self) -> dict[str, Any]:
        return flatten_sections(super().__call__())


class SectionedEnvironment(PydanticBaseSettingsSource):
    """`ASSISTANT_<SECTION>__<NAME>` variables; lists and tables are given as JSON."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, names in SECTIONS.items():
            for name, flat in names.items():
                raw = os.environ.get(f"ASSISTANT_{section.upper()}__{name.upper()}")
                if raw is not None:
                    complex_value = raw.lstrip().startswith(("[", "{"))
                    found[flat] = json.loads(raw) if complex_value else raw
        return found


@cache
def _section_model(settings_class: type[BaseModel], section: str) -> type[BaseModel]:
    declared = settings_class.model_fields
    names = SECTIONS[section].items()
    fields = {name: (declared[flat].annotation, declared[flat]) for name, flat in names}
    title = f"{section.title()}Settings"
    return create_model(title, __config__=ConfigDict(frozen=True), **fields)


def section(settings: BaseModel, name: str) -> Any:
    """The `name` section of `settings` as its own frozen model."""
    values = {field: getattr(settings, flat) for field, flat in SECTIONS[name].items()}
    return _section_model(type(settings), name).model_construct(**values)

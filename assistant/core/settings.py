"""Settings: paths, model names and thresholds.

Values come, highest priority first, from keyword arguments, `ASSISTANT_*`
environment variables, a TOML file (`assistant.toml`, or the path in
`ASSISTANT_CONFIG`), and the defaults below, which work offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from assistant.core.errors import ConfigError, MissingConfigFile
from assistant.core.setting_sections import (
    SectionedEnvironment,
    SectionedToml,
    flatten_sections,
    section,
)
from assistant.core.setting_tables import ApiKey, Components, SupportHours, UserAccount
from assistant.text.redaction import DEFAULT_PHONE_REGIONS, Redactor

__all__ = ["ApiKey", "Components", "Settings", "SupportHours", "UserAccount", "load_settings"]

DEFAULT_CONFIG_FILE = Path("assistant.toml")
RETIRED_INT8 = (
    "intent_int8 is retired: the intent model and the sentence encoder now run as int8 ONNX "
    "on the CPU whenever int8 kept its accuracy at training, fp32 otherwise; remove the "
    'setting, or set encoder_runtime = "int8", "fp32" or "torch" to choose yourself'
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid")

    # Where things live.
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    index_dir: Path = Path("index")
    database_path: Path = Path("var/conversations.db")
    # The conversation log in PostgreSQL ("postgresql://user:password@host:5432/db") instead
    # of the SQLite file at database_path: what several servers share (see DEPLOY.md).
    database_url: str = ""

    # Models: a local folder, a hub name, or the bundled MiniLM alias.
    intent_base_model: str = "all-MiniLM-L6-v2"
    embedding_model: str = "all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    faiss_gpu: Literal["auto", "on", "off"] = "auto"
    # What runs the intent model and the sentence encoder (core/onnx_forms.py): "auto" is the
    # ONNX form chosen at training (int8 on the CPU when it kept within the tolerances below,
    # fp32 otherwise; fp32 on CUDA); "int8" and "fp32" force one; "torch" is PyTorch. The
    # fallback is fitted on the form this setting serves when the model is trained, and
    # "auto" serves an intent model in the form its fallback was fitted on.
    encoder_runtime: Literal["auto", "int8", "fp32", "torch"] = "auto"
    # How far below fp32 the int8 form may score on held-out data and still be chosen: intent
    # accuracy (0.003 = 0.3 points) and the index's MRR@10. Negative: never int8.
    int8_accuracy_tolerance: float = Field(0.003, ge=-1, le=1)
    int8_mrr_tolerance: float = Field(0.005, ge=-1, le=1)

    # Retrieval index (retrieval/structure.py): exact up to this many past questions, then
    # approximate: HNSW on the CPU, IVF-Flat when the index goes on a GPU ("auto").
    exact_index_max_rows: int = Field(20_000, ge=0)
    approximate_index: Literal["auto", "hnsw", "ivf"] = "auto"
    hnsw_m: int = Field(32, ge=4, le=256)  # graph links per vector
    hnsw_ef_construction: int = Field(40, ge=8)  # candidates while building
    hnsw_ef_search: int = Field(256, ge=1)  # candidates per search: recall against speed
    ivf_nprobe: int = Field(32, ge=1)  # IVF lists searched per query

    # Intent classifier training (defaults chosen on validation data; see README).
    epochs: int = Field(7, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)  # the pretrained encoder
    head_learning_rate: float = Field(5e-4, gt=0)  # the head, initialised by linear probing
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    probe_regularisation: float = Field(10.0, gt=0)  # logistic regression C for the probe
    freeze_word_embeddings: bool = True
    bf16: bool = False  # bfloat16 autocast while training (faster on recent CPUs and GPUs)
    early_stopping_patience: int = Field(3, ge=1)
    # Once the epoch, temperature and fallback are chosen with validation held out, train
    # again on train + validation for that many epochs and serve that model. Off by default:
    # the held-out thresholds do not carry over to it on small data (README).
    refit_on_validation: bool = False
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    max_length: int = Field(64, ge=8)
    seed: int = 13
    out_of_scope_label: str = "out_of_scope"

    # Fallback: None means the threshold and margin chosen on validation data at training.
    intent_threshold: float | None = Field(None, ge=0, le=1)
    ambiguity_margin: float | None = Field(None, ge=0, le=1)
    max_accuracy_loss: float = Field(0.01, ge=0, le=1)  # in-scope accuracy the fallback may cost
    # With no out-of-scope examples: the share of known messages judged too unfamiliar.
    familiarity_quantile: float = Field(0.005, ge=0, lt=1)
    per_intent_thresholds: bool = False
    intent_int8: bool | None = None  # retired: see RETIRED_INT8

    # Answer generator. With no base model, a small GPT-2 and its tokenizer are trained from
    # scratch on the Q&A pairs; a local folder or hub name (e.g. "gpt2") is fine-tuned instead.
    generator_enabled: bool = True
    generator_base_model: str | None = None
    generator_layers: int = Field(3, ge=1)  # the from-scratch model's shape
    generator_hidden_size: int = Field(192, ge=16)
    generator_heads: int = Field(4, ge=1)
    generator_vocab_size: int = Field(4000, ge=300)
    generator_epochs: int = Field(16, ge=1)
    generator_batch_size: int = Field(8, ge=1)
    generator_learning_rate: float | None = Field(None, gt=0)  # None: 1e-3 scratch, 5e-5 tuned
    generator_context_answers: int = Field(2, ge=1)
    generator_context_tokens: int = Field(64, ge=8)
    generator_question_tokens: int = Field(32, ge=8)
    generator_answer_tokens: int = Field(160, ge=8)  # training cut-off and generation cap
    generator_repeat_ngram: int = Field(4, ge=0)  # no n-gram twice in one answer; 0 turns off
    # How answers are written (generation/decoding.py): "sentences" only in whole sentences of
    # the past answers in the prompt, "free" any text; "auto" copies sentences with a model
    # trained from scratch, writes freely with one fine-tuned from a pretrained GPT-2.
    generator_decoding: Literal["auto", "sentences", "free"] = "auto"
    grounding_quantile: float = Field(0.05, ge=0, lt=1)  # see generation/training.py
    # What runs the generator (generation/onnx_decoder.py): "auto" is its ONNX export when
    # the version has one (ONNX Runtime, no PyTorch), PyTorch otherwise; "torch" is PyTorch.
    generator_runtime: Literal["auto", "torch"] = "auto"
    # Serve the int8 ONNX form saved beside fp32 (CPU only); training prints how often it
    # picks fp32's next token on held-out answers.
    generator_int8: bool = False

    # Routing.
    retrieval_threshold: float = Field(0.82, ge=-1, le=1)
    # Below the retrieval threshold but above this, the generator writes an answer.
    generation_threshold: float = Field(0.5, ge=-1, le=1)
    # A generated answer that fails its checks is replaced by the closest past answer when
    # that past question is at least this similar; otherwise a clarifying question is asked.
    fallback_retrieval_threshold: float = Field(0.7, ge=-1, le=1)
    handoff_intents: list[str] = ["human_agent"]
    # Not knowing (routing/fallback.py): intents always left to people, misunderstandings
    # running before a handoff, and when a person can take one (None: always).
    always_human_intents: list[str] = ["complaint", "delete_account"]
    misunderstood_before_handoff: int = Field(2, ge=1)
    # The least probability and lead over the runner-up an answer needs, whatever thresholds
    # training chose on a small validation set (Rasa's FallbackClassifier defaults); below
    # them the customer gets a clarifying question. 0 turns each off.
    clarify_below: float = Field(0.3, ge=0, le=1)
    clarify_margin: float = Field(0.1, ge=0, le=1)
    familiarity_threshold: float | None = Field(None, ge=-1, le=1)  # None: chosen at training
    support_hours: SupportHours | None = None
    top_k_intents: int = Field(3, ge=1)
    top_k_sources: int = Field(3, ge=1)

    # Serving.
    max_message_chars: int = Field(1000, ge=1)
    max_request_bytes: int = Field(1_000_000, ge=1024)  # JSON API bodies; larger: 413
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    # How often a running server looks for newly promoted models (0: never; restart instead).
    reload_check_seconds: float = Field(2.0, ge=0)
    # Bounded work per client (see channels/rate_limits.py); rates are `limits` strings.
    rate_per_conversation: str = "30/minute"  # /api/chat messages in one conversation
    rate_per_address: str = "120/minute"  # /api/chat, /api/feedback, /api/suggest together
    page_events_per_session: str = "120/minute"  # customer page events per browser tab
    page_events_per_address: str = "600/minute"
    # Direct clients at these addresses (no proxy header) are not rate limited: local tools.
    rate_limit_exempt: list[str] = ["127.0.0.1", "::1"]
    # Proxies (addresses or networks) whose X-Forwarded-For / -Proto are believed.
    trusted_proxies: list[str] = []
    max_waiting_chats: int = Field(128, ge=1)  # /api/chat requests at once; more: 503
    queue_max_size: int = Field(100, ge=1)  # events waiting per page; more: "busy"
    # Concurrent messages are encoded together (core/batching.py): at most this many in one
    # batch, and while busy the encoder waits this long for more.
    batch_max_messages: int = Field(64, ge=1)
    batch_wait_ms: float = Field(2.0, ge=0, le=50)
    # Threads for model work (encoders, FAISS, the generator); 0: one per core.
    model_threads: int = Field(0, ge=0)
    # Written answers at once (each in its own worker); more wait, up to `generation_queue`.
    generation_workers: int = Field(1, ge=1)
    generation_queue: int = Field(8, ge=0)  # written answers waiting; more get the fallback
    # Web chat events (a reply being written, a rating) handled at once per event kind.
    chat_concurrency: int = Field(0, ge=0)  # 0: sized to the server (max_waiting_chats)

    # Access: the support team's accounts and other tools' API keys (see staff/accounts.py).
    users: list[UserAccount] = []
    api_keys: list[ApiKey] = []
    metrics_need_api_key: bool = False  # /metrics asks for an API key (X-API-Key or Bearer)
    sign_in_attempts: int = Field(5, ge=1)  # wrong passwords per name within the window
    sign_in_window_seconds: float = Field(900.0, gt=0)
    sign_in_rate_per_address: str = "10/minute"  # sign-in attempts from one address
    sign_in_concurrency: int = Field(2, ge=1)  # argon2 checks at once (64 MiB each)
    session_hours: float = Field(12.0, gt=0)  # a staff sign-in lasts this long
    secure_cookies: bool = False  # true behind HTTPS (also set by X-Forwarded-Proto: https)
    # Origins besides the server's own that may call it from a browser (CORS, staff pages).
    allowed_origins: list[str] = []
    low_confidence_below: float = Field(0.5, ge=0, le=1)  # answered turns below: agent queue
    # The business's own support emails and phone numbers: kept when the log is redacted, so
    # an agent's reply that gives them reaches the customer (and the training data) intact.
    public_contacts: list[str] = ["help@pebbleandpine.example", "+1 555 0142"]
    # How the redactor reads a phone number without a country code: as a number of the first
    # region (the business's), or of another when written with its trunk prefix 0.
    phone_regions: list[str] = list(DEFAULT_PHONE_REGIONS)

    # Which class plays each role (the `[components]` section).
    components: Components = Components()

    @field_validator(
        "rate_per_conversation",
        "rate_per_address",
        "page_events_per_session",
        "page_events_per_address",
        "sign_in_rate_per_address",
    )
    @classmethod
    def _is_rate(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError for a string that is not a rate like "30/minute"
        return value

    @field_validator("public_contacts")
    @classmethod
    def _are_contacts(cls, value: list[str]) -> list[str]:
        Redactor(value)  # raises ValueError naming an entry that is not an email or phone
        return value

    @field_validator("phone_regions")
    @classmethod
    def _are_regions(cls, value: list[str]) -> list[str]:
        Redactor((), value)  # raises ValueError naming an unknown region
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = settings_cls.model_config.get("toml_file") or Path(
            os.environ.get("ASSISTANT_CONFIG", DEFAULT_CONFIG_FILE)
        )
        return (
            init_settings,
            env_settings,
            SectionedEnvironment(settings_cls),
            SectionedToml(settings_cls, toml_path),
        )

    def __init__(self, **values: Any) -> None:
        super().__init__(**flatten_sections(values))

    @field_validator("intent_int8")
    @classmethod
    def _retired(cls, value: bool | None) -> None:
        if value is not None:
            raise ValueError(RETIRED_INT8)
        return None

    # Each component's section (see SECTIONS).
    paths = property(lambda self: section(self, "paths"))
    models = property(lambda self: section(self, "models"))
    intents = property(lambda self: section(self, "intents"))
    generator = property(lambda self: section(self, "generator"))
    routing = property(lambda self: section(self, "routing"))
    retrieval = property(lambda self: section(self, "retrieval"))
    serving = property(lambda self: section(self, "serving"))
    access = property(lambda self: section(self, "access"))

    @property
    def intent_models_dir(self) -> Path:
        return self.models_dir / "intent"

    @property
    def generator_models_dir(self) -> Path:
        return self.models_dir / "generator"

    @property
    def qa_index_dir(self) -> Path:
        return self.index_dir / "qa"


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; `config_path` replaces the default TOML file. Raises `ConfigError`
    naming each setting that is wrong."""
    settings_class = Settings
    if config_path is not None:
        if not config_path.is_file():
            raise MissingConfigFile(f"config file not found: {config_path}")

        class FileSettings(Settings):
            model_config = SettingsConfigDict(toml_file=config_path)

        settings_class = FileSettings
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from error

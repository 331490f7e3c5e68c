"""Building the artifacts the assistant serves from: intent model, Q&A index, answer generator.

`ensure_artifacts` builds only what is missing or stale (trained on other data or
with another base model), so a second start reuses everything. What it compares
against is the live release (the pointer, releases.py); what it builds goes live
together, as one release, once every part is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.core.errors import ArtifactError
from assistant.core.files import read_json
from assistant.core.settings import Settings
from assistant.datasets.corpus import dataset_splits, labelled_examples
from assistant.datasets.loading import Dataset, checksum, qa_checksum
from assistant.generation.training import RECIPE_FIELDS, train_generator
from assistant.generation.writer import GENERATOR_FORMAT, generator_path
from assistant.generation.writer import METADATA_FILE as GENERATOR_FILE
from assistant.intents.classifier import METADATA_FILE, MODEL_FORMAT, intent_model_path
from assistant.intents.training import TRAINING_FIELDS, TrainingReport, train_intent_classifier
from assistant.lifecycle.releases import live_release_or_none, release_built
from assistant.lifecycle.versions import base_data_checksum
from assistant.retrieval.encoder_gate import build_gated_index
from assistant.retrieval.index import (
    META_FILE,
    FaissRetriever,
    check_index_metadata,
    index_path,
    index_recipe,
    load_index_version,
)
from assistant.retrieval.index import REBUILD_HINT as INDEX_HINT
from assistant.retrieval.structure import structure_staleness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildStep:
    artifact: str
    reason: str  # why it was (re)built


def intent_checksum(dataset: Dataset, settings: Settings) -> str:
    return checksum(labelled_examples(dataset, settings))


def train_intents(dataset: Dataset, settings: Settings) -> TrainingReport:
    splits = dataset_splits(dataset, settings)
    return train_intent_classifier(
        splits.train, splits.validation, settings, splits.checksum, splits.test
    )


def build_index(dataset: Dataset, settings: Settings, release: bool = True) -> FaissRetriever:
    """Build and publish a new index version; live at once unless `release` is False. Its
    encoder's form (int8 or fp32 ONNX) is chosen on the validation split's questions."""
    questions = dataset_splits(dataset, settings).validation
    retriever = build_gated_index(dataset.qa_pairs, settings, questions)
    retriever.publish(settings.qa_index_dir)
    if release:
        release_built(settings, {"index": retriever.version})
    return retriever


def live_part(settings: Settings, part: str) -> str | None:
    """The live release's version of `part` ("intent", "index", "generator"), or None."""
    pointer = live_release_or_none(settings)
    return getattr(pointer.versions, part) if pointer else None


def intent_model_staleness(dataset: Dataset, settings: Settings) -> str | None:
    """Why the intent model must be (re)trained, or None when the live one fits."""
    version = live_part(settings, "intent")
    try:
        if version is None:
            return "no trained intent model"
        path = intent_model_path(settings.intent_models_dir, version)
        metadata = read_json(path / METADATA_FILE, "")
    except ArtifactError:
        return "no trained intent model"
    if metadata.get("format") != MODEL_FORMAT:
        return "the saved intent model is in an older format"
    if metadata.get("base_model") != settings.intent_base_model:
        trained_from = metadata.get("base_model")
        return f"trained from {trained_from!r}, configured {settings.intent_base_model!r}"
    if "search" not in metadata:  # a searched recipe differs from the settings on purpose
        recipe = settings.model_dump(include=TRAINING_FIELDS, mode="json")
        if recipe_changed(metadata, recipe, "intent model"):
            return "the intent model settings changed since it was trained"
    if base_data_checksum(metadata, "data_checksum") != intent_checksum(dataset, settings):
        return "the intent examples changed since it was trained"
    return None


def generator_staleness(dataset: Dataset, settings: Settings) -> str | None:
    """Why the answer generator must be (re)trained, or None when it fits or is turned off."""
    if not settings.generator_enabled:
        return None
    version = live_part(settings, "generator")
    try:
        if version is None:
            return "no trained answer generator"
        path = generator_path(settings.generator_models_dir, version)
        metadata = read_json(path / GENERATOR_FILE, "")
    except ArtifactError:
        return "no trained answer generator"
    if metadata.get("format") != GENERATOR_FORMAT:
        return "the saved generator is in an older format"
    if recipe_changed(
        metadata, settings.model_dump(include=RECIPE_FIELDS, mode="json"), "generator"
    ):
        return "the generator settings changed since it was trained"
    if base_data_checksum(metadata, "data_checksum") != qa_checksum(dataset):
        return "the Q&A pairs changed since it was trained"
    return None


def index_staleness(dataset: Dataset, settings: Settings) -> str | None:
    """Why the Q&A index must be (re)built, or None when the live one fits."""
    version = live_part(settings, "index")
    if version is None:
        return "no built retrieval index"
    try:
        directory = index_path(settings.qa_index_dir, version)
        metadata = read_json(directory / META_FILE, INDEX_HINT)
        if recipe_changed(metadata, index_recipe(settings), "index"):
            return "the index settings changed since it was built"
        structure = structure_staleness(metadata, settings)
        if structure:
            return structure
        check_index_metadata(directory, metadata, settings, qa_checksum(dataset))
    except ArtifactError as error:
        return str(error).removesuffix(f" {INDEX_HINT}").rstrip(".")
    return None


def recipe_changed(metadata: dict[str, Any], current: dict[str, Any], what: str) -> bool:
    """Whether an artifact's recorded recipe differs from the settings; logs how. The one
    comparison for the intent model, the index and the generator alike."""
    change = recipe_change(metadata, current)
    if change:
        log.info("the %s was %s", what, change)
    return change is not None


def recipe_change(metadata: dict[str, Any], current: dict[str, Any]) -> str | None:
    """How the settings differ from the recipe an artifact recorded when it was built, as
    "trained with epochs=7; the settings say epochs=3", or None when they agree. Settings
    the artifact recorded nothing about (it predates them) are not held against it."""
    recorded = metadata.get("recipe")
    if not isinstance(recorded, dict):
        return None
    changed = sorted(
        name for name in current if name in recorded and recorded[name] != current[name]
    )
    if not changed:
        return None
    before = ", ".join(f"{name}={recorded[name]!r}" for name in changed)
    now = ", ".join(f"{name}={current[name]!r}" for name in changed)
    return f"built with {before}; the settings say {now}"


def ensure_artifacts(
    dataset: Dataset, settings: Settings, announce: Callable[[str], None] = print
) -> list[BuildStep]:
    """Train the intent model, build the index and train the generator where missing or
    stale, then release what was built, all at once. What is stale is decided before
    anything is built, against the live release as it was."""
    steps, built = [], {}
    reasons = [
        intent_model_staleness(dataset, settings),
        index_staleness(dataset, settings),
        generator_staleness(dataset, settings),
    ]
    live_index = live_part(settings, "index")
    reason = reasons[0]
    if reason:
        announce(f"Training the intent classifier ({reason})...")
        report = train_intents(dataset, settings)
        test = report.metrics.get("test", {})
        announce(
            f"Intent model {report.version}: held-out accuracy {test.get('accuracy', 0):.3f}, "
            f"macro-F1 {test.get('macro_f1', 0):.3f}"
        )
        steps.append(BuildStep("intent model", reason))
        built["intent"] = report.version
    retriever = None
    reason = reasons[1]
    if reason:
        announce(f"Building the retrieval index ({reason})...")
        retriever = build_index(dataset, settings, release=False)
        steps.append(BuildStep("retrieval index", reason))
        built["index"] = retriever.version
    reason = reasons[2]
    if reason:
        announce(f"Training the answer generator ({reason})...")
        retriever = retriever or load_index_version(settings, live_index)
        report = train_generator(dataset.qa_pairs, settings, qa_checksum(dataset), retriever)
        announce(
            f"Answer generator {report.version}: held-out perplexity "
            f"{report.metrics['validation_perplexity']:.1f}, grounding threshold "
            f"{report.metrics['grounding_threshold']:.3f}, relevance threshold "
            f"{report.metrics['relevance_threshold']:.3f}"
        )
        steps.append(BuildStep("answer generator", reason))
        built["generator"] = report.version
    if built:
        release_built(settings, built)
    return steps

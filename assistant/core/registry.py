"""The loaded models as one registry object: one consistent set, swapped whole.

A reply uses one set from start to end, so a switch to new versions mid-reply
never mixes two. The routing policy is assembled here from the settings and the
thresholds chosen when the classifier was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.core.settings import Settings
from assistant.datasets.loading import load_dataset, qa_checksum
from assistant.generation.writer import AnswerGenerator
from assistant.intents.classifier import IntentClassifier
from assistant.intents.rejection import RejectionPolicy
from assistant.lifecycle.releases import ModelVersions
from assistant.retrieval.index import Retriever, load_index_version
from assistant.routing.router import Router, RoutingPolicy
from assistant.routing.templates import TemplateBook, load_templates

WARM_UP_MESSAGE = "Where is my order?"


@dataclass(frozen=True)
class Models:
    """One consistent set of loaded models. A reply uses one set from start to end, so a
    switch to new versions mid-reply never mixes two."""

    classifier: IntentClassifier
    retriever: Retriever
    router: Router
    generator: AnswerGenerator | None = None

    @classmethod
    def assemble(
        cls,
        settings: Settings,
        classifier: IntentClassifier,
        retriever: Retriever,
        templates: TemplateBook,
        generator: AnswerGenerator | None = None,
    ) -> Models:
        policy = policy_from(settings, classifier.rejection, generator is not None)
        return cls(classifier, retriever, Router(policy, templates), generator)

    @classmethod
    def load(
        cls,
        settings: Settings,
        versions: ModelVersions | None = None,
        templates: TemplateBook | None = None,
        encoder: Any = None,
    ) -> Models:
        """Load `versions` (by default the live ones); raises `ArtifactError` saying how to
        build what is missing. `encoder` reuses an already loaded sentence encoder."""
        dataset = load_dataset(settings.data_dir)
        classifier = IntentClassifier.load(
            settings.intent_models_dir,
            settings.device,
            versions.intent if versions else None,
            int8=settings.intent_int8,
        )
        index_version = versions.index if versions else None
        retriever = load_index_version(settings, index_version, qa_checksum(dataset), encoder)
        generator = load_generator(settings, versions.generator if versions else None)
        return cls.assemble(
            settings, classifier, retriever, templates or load_templates(settings), generator
        )

    @property
    def versions(self) -> ModelVersions:
        generator = self.generator.version if self.generator else None
        return ModelVersions(self.classifier.version, self.retriever.version, generator)

    def warm_up(self) -> None:
        """Run each model once so the first customer does not pay for lazy initialisation."""
        self.classifier.predict([WARM_UP_MESSAGE])
        self.retriever.search([WARM_UP_MESSAGE])
        if self.generator is not None:
            self.generator.generate(WARM_UP_MESSAGE, [])


def load_generator(settings: Settings, version: str | None = None) -> AnswerGenerator | None:
    """The live answer generator (or `version`), or None when it is turned off."""
    if not settings.generator_enabled:
        return None
    return AnswerGenerator.load(
        settings.generator_models_dir,
        settings.device,
        version,
        int8=settings.generator_int8,
        repeat_ngram=settings.generator_repeat_ngram,
    )


def policy_from(
    settings: Settings, chosen: RejectionPolicy, can_generate: bool = False
) -> RoutingPolicy:
    """Routing thresholds: those set in the settings, else those chosen at training."""
    threshold_set = settings.intent_threshold is not None
    return RoutingPolicy(
        intent_threshold=settings.intent_threshold if threshold_set else chosen.threshold,
        ambiguity_margin=(
            chosen.margin if settings.ambiguity_margin is None else settings.ambiguity_margin
        ),
        retrieval_threshold=settings.retrieval_threshold,
        handoff_intents=frozenset(settings.handoff_intents),
        out_of_scope_label=settings.out_of_scope_label,
        intent_thresholds={} if threshold_set else chosen.per_intent,
        generation_threshold=settings.generation_threshold if can_generate else None,
        fallback_retrieval_threshold=settings.fallback_retrieval_threshold,
    )

"""The loaded models as one registry object: one consistent set, swapped whole.

A reply uses one set from start to end, so a switch to new versions mid-reply
never mixes two. Every model is built by the class the `[components]` settings
name (`assistant.core.components`), at start-up and at each switch alike. The
routing policy is assembled here from the settings and the thresholds chosen when
the classifier was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.core.components import build_component
from assistant.core.seams import AnswerWriter, IntentClassifier, Retriever, Thresholds
from assistant.core.settings import Settings
from assistant.lifecycle.releases import ModelVersions
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
    generator: AnswerWriter | None = None

    @classmethod
    def assemble(
        cls,
        settings: Settings,
        classifier: IntentClassifier,
        retriever: Retriever,
        templates: TemplateBook,
        generator: AnswerWriter | None = None,
    ) -> Models:
        policy = policy_from(settings, classifier.rejection, generator is not None)
        return cls(classifier, retriever, Router(policy, templates), generator)

    @classmethod
    def load(
        cls,
        settings: Settings,
        versions: ModelVersions | None = None,
        templates: TemplateBook | None = None,
        previous: Models | None = None,
    ) -> Models:
        """Load `versions` (by default the live ones) with the configured classes; raises
        `ArtifactError` saying how to build what is missing. `previous`, the set being
        replaced, lets a component reuse what it already loaded (the sentence encoder)."""
        classifier = build_component(
            settings,
            "intent_classifier",
            versions.intent if versions else None,
            previous.classifier if previous else None,
        )
        retriever = build_component(
            settings,
            "retriever",
            versions.index if versions else None,
            previous.retriever if previous else None,
        )
        generator = None
        if settings.generator_enabled:
            generator = build_component(
                settings,
                "answer_writer",
                versions.generator if versions else None,
                previous.generator if previous else None,
            )
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


def policy_from(
    settings: Settings, chosen: Thresholds, can_generate: bool = False
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

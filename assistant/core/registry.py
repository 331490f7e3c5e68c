"""The loaded models as one registry object: one consistent set, swapped whole.

A reply uses one set from start to end, so a switch to new versions mid-reply
never mixes two. Every model is built by the class the `[components]` settings
name (`assistant.core.components`), at start-up and at each switch alike. The
routing policy is assembled here from the settings and the thresholds chosen when
the classifier was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from assistant.core.batching import MessageEncoder
from assistant.core.components import build_component
from assistant.core.seams import AnswerWriter, IntentClassifier, Retriever, Thresholds
from assistant.core.settings import Settings
from assistant.lifecycle.releases import ModelVersions, live_release_or_none, live_versions
from assistant.routing.router import UNMEASURED, Router, RoutingPolicy
from assistant.routing.templates import TemplateBook, load_templates

WARM_UP_MESSAGE = "Where is my order?"


@dataclass(frozen=True)
class Models:
    """One consistent set of loaded models. A reply uses one set from start to end, so a
    switch to new versions mid-reply never mixes two."""

    classifier: IntentClassifier
    retriever: Retriever
    router: Router
    # Classifies and searches concurrent messages together (see `assistant.core.batching`).
    encoder: MessageEncoder = field(compare=False)
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
        policy = policy_from(
            settings.routing, settings.intents, classifier.rejection, generator is not None
        )
        serving = settings.serving
        encoder = MessageEncoder(
            classifier,
            retriever,
            settings.routing.top_k_intents,
            settings.routing.top_k_sources,
            serving.batch_max_messages,
            serving.batch_wait_ms,
        )
        return cls(classifier, retriever, Router(policy, templates), encoder, generator)

    @classmethod
    def load(
        cls,
        settings: Settings,
        versions: ModelVersions | None = None,
        templates: TemplateBook | None = None,
        previous: Models | None = None,
        writer: bool = True,
    ) -> Models:
        """Load `versions` (by default the live ones) with the configured classes; raises
        `ArtifactError` saying how to build what is missing. `previous`, the set being
        replaced, lets a component reuse what it already loaded (the sentence encoder).
        The live versions are those the release pointer names, so the set loaded is
        one release; with no release yet, each component says what is missing. Without
        `writer` the set has no answer writer (`with_writer` adds it)."""
        versions = versions or live_or_unreleased(settings)
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
        generator = load_writer(settings, versions, previous) if writer else None
        return cls.assemble(
            settings, classifier, retriever, templates or load_templates(settings), generator
        )

    def with_writer(self, settings: Settings) -> Models:
        """This set with the configured answer writer added, at the live release's version.
        Should another release have gone live since this set was loaded, the whole set is
        loaded at it instead, so that no reply mixes two releases."""
        versions = live_or_unreleased(settings)
        templates = self.router.templates
        if versions is not None and replace(versions, generator=None) != self.versions:
            return Models.load(settings, versions, templates, self)
        writer = load_writer(settings, versions, self)
        return Models.assemble(settings, self.classifier, self.retriever, templates, writer)

    @property
    def versions(self) -> ModelVersions:
        generator = self.generator.version if self.generator else None
        return ModelVersions(self.classifier.version, self.retriever.version, generator)

    def warm_up(self) -> None:
        """Run each model once so the first customer does not pay for lazy initialisation."""
        self.encoder.understand(WARM_UP_MESSAGE)
        if self.generator is not None:
            self.generator.generate(WARM_UP_MESSAGE, [])


def load_writer(
    settings: Settings, versions: ModelVersions | None, previous: Models | None
) -> AnswerWriter | None:
    """The configured answer writer at `versions` (None: live); None when writing is off."""
    if not settings.generator.enabled:
        return None
    return build_component(
        settings,
        "answer_writer",
        versions.generator if versions else None,
        previous.generator if previous else None,
    )


def live_or_unreleased(settings: Settings) -> ModelVersions | None:
    """The live release's versions; None when nothing was released (components that keep
    no versions, or nothing built: the component then says how to build it)."""
    if live_release_or_none(settings) is None:
        return None
    return live_versions(settings)


def policy_from(
    routing: Any, intents: Any, chosen: Thresholds, can_generate: bool = False
) -> RoutingPolicy:
    """Routing thresholds from the `routing` and `intents` settings sections; the fallback
    threshold and margin are those chosen at training unless the settings set them."""
    threshold_set = intents.intent_threshold is not None
    margin_set = intents.ambiguity_margin is not None
    return RoutingPolicy(
        intent_threshold=intents.intent_threshold if threshold_set else chosen.threshold,
        ambiguity_margin=intents.ambiguity_margin if margin_set else chosen.margin,
        retrieval_threshold=routing.retrieval_threshold,
        handoff_intents=frozenset(routing.handoff_intents),
        out_of_scope_label=intents.out_of_scope_label,
        intent_thresholds={} if threshold_set else chosen.per_intent,
        generation_threshold=routing.generation_threshold if can_generate else None,
        fallback_retrieval_threshold=routing.fallback_retrieval_threshold,
        familiarity_threshold=(
            routing.familiarity_threshold
            if routing.familiarity_threshold is not None
            else getattr(chosen, "familiarity", UNMEASURED)
        ),
        always_human_intents=frozenset(routing.always_human_intents),
        misunderstood_before_handoff=routing.misunderstood_before_handoff,
        clarify_below=routing.clarify_below,
        clarify_margin=routing.clarify_margin,
    )

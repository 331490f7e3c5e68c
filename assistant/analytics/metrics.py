"""How the assistant is doing, from the conversation log: for the admin page and Prometheus.

Figures are computed from SQLite when asked, not kept in process memory, so every
replica reports the same numbers and a restart loses nothing. A conversation
counts once: handed off (a person took part), abandoned (no person, and it ends on a
clarifying question the customer did not answer), or contained (resolved by the bot
alone; a polite refusal, or a clarifying question the customer carried on from, keeps
it contained).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from assistant.analytics.export import normalised
from assistant.core.embeddings import Embed
from assistant.core.records import HandoffKind
from assistant.core.seams import LogReader
from assistant.core.types import Route

OTHER_HANDOFF = "other"  # a handoff with no kind: logged before v4, or made by an agent


@dataclass(frozen=True)
class Metrics:
    conversations: int
    contained: int  # resolved by the bot alone
    handed_off: int  # a person took part
    bot_turns: int  # customer messages the bot answered or handed off (not left to an agent)
    fallbacks: int  # bot turns it could not answer: see `could_not_answer`
    rated_turns: int
    thumbs_down: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    intents: dict[str, int] = field(default_factory=dict)  # final intents (corrections win)
    routes: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0  # no person, and the last reply was a clarifying question
    refusals: int = 0  # out-of-scope messages refused politely (the bot kept the conversation)
    clarifications: int = 0  # clarifying questions asked
    # Handed-off conversations by the latest handoff's kind (`HandoffKind` values, "other").
    handoffs: dict[str, int] = field(default_factory=dict)

    @property
    def containment_rate(self) -> float | None:
        return _ratio(self.contained, self.conversations)

    @property
    def handoff_rate(self) -> float | None:
        return _ratio(self.handed_off, self.conversations)

    @property
    def abandoned_rate(self) -> float | None:
        return _ratio(self.abandoned, self.conversations)

    @property
    def fallback_rate(self) -> float | None:
        return _ratio(self.fallbacks, self.bot_turns)

    @property
    def thumbs_down_rate(self) -> float | None:
        """Share of rated replies that got a thumbs down."""
        return _ratio(self.thumbs_down, self.rated_turns)


@dataclass(frozen=True)
class QuestionGroup:
    """Similar questions the bot could not answer well; `text` is the most asked phrasing."""

    text: str
    count: int
    examples: list[str]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def could_not_answer(turn: dict[str, Any], humans: set[str]) -> bool:
    """A bot turn that was not an answer: a refusal, a clarifying question, or a handoff
    because the bot did not understand. A handoff the customer asked for, or of an
    intent always left to people, is not; one logged before kinds were recorded is when
    its intent is not one of `humans` (the intents that ask for a person)."""
    route = turn["route"]
    if route in (Route.REFUSE, Route.CLARIFY):
        return True
    if route != Route.HANDOFF:
        return False
    kind = turn.get("handoff_kind")
    if kind:
        return kind == HandoffKind.MISUNDERSTOOD
    return turn["intent"] not in humans


def handoffs_by_kind(conversations: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Handed-off conversations by the kind of their latest handoff, every kind listed."""
    counts = dict.fromkeys([*(kind.value for kind in HandoffKind), OTHER_HANDOFF], 0)
    for conversation in conversations:
        if conversation["handoff_at"] is None:
            continue
        kind = conversation.get("handoff_kind")
        counts[kind if kind in counts else OTHER_HANDOFF] += 1
    return counts


def outcome(conversation: dict[str, Any]) -> str:
    """ "handed_off" (a person took part), "abandoned" (it ends on a clarifying question the
    customer did not answer) or "contained" (the bot resolved it, refusals included)."""
    if conversation["human"]:
        return "handed_off"
    if conversation.get("last_route") == Route.CLARIFY:
        return "abandoned"
    return "contained"


def summarise(
    conversations: Iterable[dict[str, Any]],
    turns: Sequence[dict[str, Any]],
    human_intents: Iterable[str] = ("human_agent",),
) -> Metrics:
    """Metrics from `LogReader.conversation_facts` and `turn_facts` rows."""
    humans = set(human_intents)
    rows = list(conversations)
    outcomes = Counter(outcome(c) for c in rows)
    bot_turns = [t for t in turns if t["route"] != Route.AGENT]
    routes = Counter(t["route"] for t in turns)
    ratings = [t["rating"] for t in turns if t["rating"] is not None]
    latencies = [t["latency_ms"] for t in bot_turns if t["latency_ms"] is not None]
    intents = Counter(t["corrected_intent"] or t["intent"] for t in turns)
    intents.pop(None, None)
    return Metrics(
        conversations=len(rows),
        contained=outcomes["contained"],
        handed_off=outcomes["handed_off"],
        bot_turns=len(bot_turns),
        fallbacks=sum(could_not_answer(t, humans) for t in bot_turns),
        rated_turns=len(ratings),
        thumbs_down=ratings.count(-1),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        intents=dict(intents.most_common()),
        routes=dict(routes.most_common()),
        abandoned=outcomes["abandoned"],
        refusals=routes[Route.REFUSE],
        clarifications=routes[Route.CLARIFY],
        handoffs=handoffs_by_kind(rows),
    )


def compute_metrics(
    store: LogReader, since: str | None = None, human_intents: Iterable[str] = ()
) -> Metrics:
    """Metrics over conversations and turns logged since an ISO date or time."""
    return summarise(
        store.conversation_facts(since), store.turn_facts(since), human_intents or ("human_agent",)
    )


def unanswered(
    turns: Iterable[dict[str, Any]],
    low_confidence_below: float,
    human_intents: Iterable[str] = ("human_agent",),
) -> list[str]:
    """Customer messages the bot could not answer (`could_not_answer`: refused, asked to
    clarify, handed off unasked) or answered with low confidence."""
    humans = set(human_intents)
    return [
        t["user_text"]
        for t in turns
        if t["route"] != Route.AGENT
        and (could_not_answer(t, humans) or (t["confidence"] or 0.0) < low_confidence_below)
    ]


def group_questions(
    texts: Sequence[str], embed: Embed, threshold: float = 0.6, top: int = 10
) -> list[QuestionGroup]:
    """Group questions by meaning, most asked first.

    Identical questions (ignoring case and end punctuation) are counted together;
    then, most frequent first, each joins the group whose leading question is
    closest to it, if their cosine similarity is at least `threshold`, else starts
    a group.
    """
    counts = Counter(normalised(text) for text in texts)
    first_seen = {normalised(text): text for text in reversed(texts)}
    distinct = [text for text, _ in counts.most_common()]
    if not distinct:
        return []
    vectors = np.asarray(embed([first_seen[text] for text in distinct]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    leaders: list[int] = []
    members: dict[int, list[int]] = {}
    for index in range(len(distinct)):
        similarities = vectors[leaders] @ vectors[index] if leaders else np.empty(0)
        best = int(np.argmax(similarities)) if leaders else -1
        if best >= 0 and similarities[best] >= threshold:
            members[leaders[best]].append(index)
        else:
            leaders.append(index)
            members[index] = [index]
    groups = [
        QuestionGroup(
            first_seen[distinct[lead]],
            sum(counts[distinct[i]] for i in group),
            [first_seen[distinct[i]] for i in group],
        )
        for lead, group in members.items()
    ]
    return sorted(groups, key=lambda g: -g.count)[:top]


def frequent_unanswered(
    store: LogReader,
    embed: Embed,
    since: str | None = None,
    low_confidence_below: float = 0.5,
    threshold: float = 0.6,
    top: int = 10,
    human_intents: Iterable[str] = ("human_agent",),
) -> list[QuestionGroup]:
    texts = unanswered(store.turn_facts(since), low_confidence_below, human_intents)
    return group_questions(texts, embed, threshold, top)


class LogCollector(Collector):
    """Prometheus gauges computed from the log at each scrape."""

    def __init__(self, store: LogReader, human_intents: Iterable[str] = ()) -> None:
        self.store = store
        self.human_intents = tuple(human_intents)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        metrics = compute_metrics(self.store, human_intents=self.human_intents)
        conversations = GaugeMetricFamily(
            "assistant_conversations", "Conversations by outcome", labels=["outcome"]
        )
        conversations.add_metric(["contained"], metrics.contained)
        conversations.add_metric(["handed_off"], metrics.handed_off)
        conversations.add_metric(["abandoned"], metrics.abandoned)
        yield conversations
        for name, value, text in (
            ("containment_ratio", metrics.containment_rate, "Conversations resolved by the bot"),
            ("handoff_ratio", metrics.handoff_rate, "Conversations a human took part in"),
            ("fallback_ratio", metrics.fallback_rate, "Bot turns it could not answer"),
            ("thumbs_down_ratio", metrics.thumbs_down_rate, "Rated replies rated down"),
        ):
            yield GaugeMetricFamily(f"assistant_{name}", text, value=value or 0.0)
        yield GaugeMetricFamily(
            "assistant_refusals", "Out-of-scope messages refused", value=metrics.refusals
        )
        yield GaugeMetricFamily(
            "assistant_clarifications", "Clarifying questions asked", value=metrics.clarifications
        )
        yield _labelled(
            "assistant_handoffs",
            "Handed-off conversations by reason",
            "reason",
            metrics.handoffs,
        )
        latency = GaugeMetricFamily(
            "assistant_reply_latency_ms", "Bot reply latency quantiles", labels=["quantile"]
        )
        for quantile, value in (("0.5", metrics.latency_p50_ms), ("0.95", metrics.latency_p95_ms)):
            latency.add_metric([quantile], value or 0.0)
        yield latency
        yield _labelled("assistant_turns", "Customer turns by route", "route", metrics.routes)
        yield _labelled(
            "assistant_intent_turns", "Customer turns by final intent", "intent", metrics.intents
        )


def _labelled(name: str, text: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def prometheus_text(store: LogReader, human_intents: Iterable[str] = ()) -> bytes:
    """The Prometheus exposition text; a registry per call, so no state is shared."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LogCollector(store, human_intents))
    return generate_latest(registry)

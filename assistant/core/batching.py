"""Encoding concurrent messages together: a micro-batcher, and one pass per message.

Requests arrive one message at a time, but an encoder does far more sentences a second
in a batch than one by one. `MicroBatcher` queues the callers' inputs and one worker
thread runs them as one batch: whatever waits when the worker is free, and, while the
server is busy (the last batch held several callers), up to `max_wait_ms` more for
company, never more than `max_batch` inputs. A lone caller never waits.

`MessageEncoder` is that, for the pipeline: each message is classified, and searched
when routing needs its closest past questions, in one batch per model, and every
model's work runs in the one worker, one batch at a time, so the encoders never run
more threads than the cores they are given. The
grounding check's embeddings (a written answer, its question, the past answers it was
written from) are computed there too, batched with the messages. The
worker leaves after `idle_seconds` without work and comes back on the next call, so a
replaced set of models (a hot reload) leaves no thread behind.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar, cast

import numpy as np

from assistant.core.embeddings import RememberedEmbed
from assistant.core.seams import IntentClassifier, Retriever
from assistant.core.types import IntentPrediction, Source

In = TypeVar("In")
Out = TypeVar("Out")

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT_MS = 2.0
IDLE_SECONDS = 30.0


@dataclass
class _Job(Generic[In, Out]):
    items: Sequence[In]
    future: Future[list[Out]]


class MicroBatcher(Generic[In, Out]):
    """Runs `work` on the inputs of concurrent `run` calls together, in one worker thread.

    `work` takes a list and returns one output per input, in order. If a batch fails, each
    caller's inputs are run again alone, so one bad input fails only its own caller.
    """

    def __init__(
        self,
        work: Callable[[list[In]], list[Out]],
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        name: str = "micro-batcher",
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._work = work
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.name = name
        self.idle_seconds = idle_seconds
        self._jobs: queue.SimpleQueue[_Job[In, Out]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()
        self._busy = False  # the last batch held more than one caller
        self.batches = 0  # batches run, and the inputs in them: for tests and benchmarks
        self.inputs = 0

    def run(self, items: Sequence[In]) -> list[Out]:
        """`work(items)`, batched with other callers'; raises what `work` raised for them."""
        if not items:
            return []
        job: _Job[In, Out] = _Job(list(items), Future())
        self._jobs.put(job)
        self._ensure_worker()
        return job.future.result()

    def _ensure_worker(self) -> None:
        with self._starting:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        while True:
            try:
                first = self._jobs.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._starting:
                    if self._jobs.empty():  # a caller that queued meanwhile restarts no one
                        self._worker = None
                        return
                continue
            self._run_batch(self._gather(first))

    def _gather(self, first: _Job[In, Out]) -> list[_Job[In, Out]]:
        """`first` and the jobs that join it: those waiting now, and while busy, those that
        arrive within `max_wait`, up to `max_batch` inputs."""
        jobs, size = [first], len(first.items)
        deadline = time.perf_counter() + (self.max_wait if self._busy else 0.0)
        while size < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                job = (
                    self._jobs.get_nowait() if remaining <= 0 else self._jobs.get(timeout=remaining)
                )
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.items)
        self._busy = len(jobs) > 1
        return jobs

    def _run_batch(self, jobs: list[_Job[In, Out]]) -> None:
        items = [item for job in jobs for item in job.items]
        self.batches += 1
        self.inputs += len(items)
        try:
            outputs = self._work(items)
        except Exception:
            if len(jobs) == 1:
                self._run_alone(jobs[0])
            else:
                for job in jobs:
                    self._run_alone(job)
            return
        start = 0
        for job in jobs:
            job.future.set_result(outputs[start : start + len(job.items)])
            start += len(job.items)

    def _run_alone(self, job: _Job[In, Out]) -> None:
        try:
            job.future.set_result(self._work(list(job.items)))
        except Exception as error:
            job.future.set_exception(error)


@dataclass(frozen=True)
class Understanding:
    """What the models make of one message: its intents and familiarity, and the closest
    past questions."""

    prediction: IntentPrediction
    sources: list[Source]


class _Need(Enum):
    """What a request asks of the models."""

    UNDERSTAND = "classify and search"  # a message, for agent assist
    CLASSIFY = "classify"  # a message; the pipeline searches it only if routing needs it
    SEARCH = "search"
    EMBED = "embed"  # a text for the sentence encoder alone (a written answer to check)


@dataclass(frozen=True)
class _Request:
    text: str
    need: _Need


_Result = Understanding | IntentPrediction | list[Source] | np.ndarray

PAST_ANSWERS_REMEMBERED = 10_000  # the index's answers, whose vectors never change


class MessageEncoder:
    """Classifies and searches concurrent messages in shared batches, one pass per model,
    and embeds the texts the grounding check compares in the same worker."""

    def __init__(
        self,
        classifier: IntentClassifier,
        retriever: Retriever,
        top_k_intents: int,
        top_k_sources: int,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    ) -> None:
        self.classifier = classifier
        self.retriever = retriever
        self.top_k_intents = top_k_intents
        self.top_k_sources = top_k_sources
        self.batcher: MicroBatcher[_Request, _Result] = MicroBatcher(
            self._run_all, max_batch, max_wait_ms, name="message-encoder"
        )
        # Past answers come back again and again as the writer's context: embedded once.
        self.embed_past_answers = RememberedEmbed(self.embed, PAST_ANSWERS_REMEMBERED)

    def understand(self, text: str) -> Understanding:
        """Both passes at once, for a caller that always needs both."""
        return cast(Understanding, self._run(text, _Need.UNDERSTAND))

    def classify(self, text: str) -> IntentPrediction:
        return cast(IntentPrediction, self._run(text, _Need.CLASSIFY))

    def search(self, text: str) -> list[Source]:
        """The closest past questions, best first."""
        return cast(list[Source], self._run(text, _Need.SEARCH))

    def _run(self, text: str, need: _Need) -> _Result:
        return self.batcher.run([_Request(text, need)])[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence embeddings of `texts` (the retriever's), computed in the
        model worker with whatever else it has to run; many texts go in batches of their
        own, so that customers' messages are answered between them."""
        if not texts:
            return self.retriever.encode([])
        size = self.batcher.max_batch
        return np.stack(
            [
                vector
                for start in range(0, len(texts), size)
                for vector in self.batcher.run(
                    [_Request(t, _Need.EMBED) for t in texts[start : start + size]]
                )
            ]
        )

    def _run_all(self, requests: list[_Request]) -> list[_Result]:
        """One pass per model over every request that needs it, answers in request order."""
        classified = self._texts(requests, _Need.UNDERSTAND, _Need.CLASSIFY)
        searched = self._texts(requests, _Need.UNDERSTAND, _Need.SEARCH)
        embedded = self._texts(requests, _Need.EMBED)
        k_intents, k_sources = self.top_k_intents, self.top_k_sources
        predictions = iter(self.classifier.assess(classified, k_intents) if classified else [])
        found = iter(self.retriever.search(searched, k_sources) if searched else [])
        vectors = iter(self.retriever.encode(embedded) if embedded else [])
        results: list[_Result] = []
        for request in requests:
            if request.need is _Need.UNDERSTAND:
                results.append(Understanding(next(predictions), next(found)))
            elif request.need is _Need.CLASSIFY:
                results.append(next(predictions))
            elif request.need is _Need.SEARCH:
                results.append(next(found))
            else:
                results.append(next(vectors))
        return results

    @staticmethod
    def _texts(requests: list[_Request], *needs: _Need) -> list[str]:
        return [request.text for request in requests if request.need in needs]

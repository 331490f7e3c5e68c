import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant.core.batching import MessageEncoder, MicroBatcher
from tests.fakes import KeywordClassifier, WordOverlapRetriever


class HeldWork:
    """Doubles its inputs; the first batch waits until released, so others queue behind it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            self.release.wait(5)
        if any(item < 0 for item in items):
            raise ValueError("negative")
        return [item * 2 for item in items]


def queue_behind_first(batcher, work, later):
    """Run `[0]` and hold it, queue each of `later` from its own thread, then release."""
    pool = ThreadPoolExecutor(len(later) + 1)
    first = pool.submit(batcher.run, [0])
    assert work.started.wait(5)
    futures = [pool.submit(batcher.run, items) for items in later]
    while batcher._jobs.qsize() < len(later):
        threading.Event().wait(0.001)
    work.release.set()
    return first, futures, pool


def test_callers_that_arrive_together_share_one_batch_and_get_their_own_results():
    work = HeldWork()
    batcher = MicroBatcher(work, max_batch=64)
    first, futures, pool = queue_behind_first(batcher, work, [[1], [2, 3], [4]])
    assert first.result() == [0]
    assert sorted(tuple(f.result()) for f in futures) == [(2,), (4, 6), (8,)]
    assert len(work.batches) == 2
    assert sorted(work.batches[1]) == [1, 2, 3, 4]
    pool.shutdown()


def test_a_batch_never_holds_more_than_max_batch_inputs():
    work = HeldWork()
    batcher = MicroBatcher(work, max_batch=2)
    _first, futures, pool = queue_behind_first(batcher, work, [[1], [2], [3], [4], [5]])
    assert sorted(f.result()[0] for f in futures) == [2, 4, 6, 8, 10]
    assert all(len(batch) <= 2 for batch in work.batches)
    assert len(work.batches) >= 4
    pool.shutdown()


def test_a_bad_input_fails_only_its_own_caller():
    work = HeldWork()
    batcher = MicroBatcher(work)
    _first, futures, pool = queue_behind_first(batcher, work, [[1], [-1], [3]])
    good, bad, other = futures
    assert good.result() == [2]
    assert other.result() == [6]
    with pytest.raises(ValueError, match="negative"):
        bad.result()
    pool.shutdown()


def test_a_lone_caller_runs_alone_and_the_idle_worker_leaves_and_comes_back():
    seen = []
    batcher = MicroBatcher(lambda items: seen.append(items) or items, idle_seconds=0.05)
    assert batcher.run(["a"]) == ["a"]
    worker = batcher._worker
    worker.join(2)
    assert not worker.is_alive()
    assert batcher.run(["b"]) == ["b"]
    assert seen == [["a"], ["b"]]
    assert batcher.run([]) == []


class CountingClassifier(KeywordClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.release = threading.Event()

    def assess(self, texts, top_k=3):
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.release.wait(5)
        return super().assess(texts, top_k)


class CountingRetriever(WordOverlapRetriever):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.encoded: list[list[str]] = []

    def search(self, texts, k=3):
        self.calls.append(list(texts))
        return super().search(texts, k)

    def encode(self, texts):
        self.encoded.append(list(texts))
        return super().encode(texts)


def test_concurrent_messages_are_classified_and_searched_together_once_each():
    classifier, retriever = CountingClassifier(), CountingRetriever()
    encoder = MessageEncoder(classifier, retriever, top_k_intents=2, top_k_sources=1)
    messages = ["where is my order", "I want a refund", "reset my password", "hello there"]
    with ThreadPoolExecutor(len(messages)) as pool:
        futures = [pool.submit(encoder.understand, messages[0])]
        while not classifier.calls:
            threading.Event().wait(0.001)
        futures += [pool.submit(encoder.understand, text) for text in messages[1:]]
        while encoder.batcher._jobs.qsize() < len(messages) - 1:
            threading.Event().wait(0.001)
        classifier.release.set()
        understood = [future.result() for future in futures]
    assert len(classifier.calls) == 2
    assert classifier.calls[0] == messages[:1]
    assert sorted(classifier.calls[1]) == sorted(messages[1:])
    assert sorted(text for call in retriever.calls for text in call) == sorted(messages)
    for text, result in zip(messages, understood, strict=True):
        assert result.prediction == classifier.assess([text], 2)[0]
        assert result.sources == retriever.search([text], 1)[0]
        assert len(result.prediction.intents) <= 2


def test_texts_to_embed_share_the_worker_and_its_batch_with_messages():
    classifier, retriever = CountingClassifier(), CountingRetriever()
    encoder = MessageEncoder(classifier, retriever, top_k_intents=2, top_k_sources=1)
    answers = ["Refunds take five days.", "Orders ship in two days."]
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(encoder.understand, "where is my order")
        while not classifier.calls:
            threading.Event().wait(0.001)
        understood = pool.submit(encoder.understand, "I want a refund")
        embedded = pool.submit(encoder.embed, answers)
        while encoder.batcher._jobs.qsize() < 2:
            threading.Event().wait(0.001)
        classifier.release.set()
        first.result(), understood.result()
        vectors = embedded.result()
    assert classifier.calls[1] == ["I want a refund"]  # the texts to embed are not classified
    assert answers in retriever.encoded  # embedded together, in the batch of the message
    assert encoder.batcher.batches == 2
    assert np.array_equal(vectors, retriever.encode(answers))
    assert encoder.embed([]).shape[0] == 0


def test_past_answers_are_embedded_once():
    retriever = CountingRetriever()
    encoder = MessageEncoder(KeywordClassifier(), retriever, top_k_intents=2, top_k_sources=1)
    first = encoder.embed_past_answers(["Refunds take five days.", "Orders ship in two days."])
    again = encoder.embed_past_answers(["Orders ship in two days.", "Refunds take five days."])
    assert retriever.encoded == [["Refunds take five days.", "Orders ship in two days."]]
    assert np.array_equal(first, again[::-1])


def test_many_texts_to_embed_go_in_batches_no_larger_than_the_limit():
    retriever = CountingRetriever()
    encoder = MessageEncoder(KeywordClassifier(), retriever, 2, 1, max_batch=4)
    texts = [f"question number {n}" for n in range(10)]
    assert np.array_equal(encoder.embed(texts), retriever.encode(texts))
    assert [len(call) for call in retriever.encoded[:-1]] == [4, 4, 2]


def test_a_message_classified_alone_is_not_searched_and_a_search_shares_the_batch():
    classifier, retriever = CountingClassifier(), CountingRetriever()
    encoder = MessageEncoder(classifier, retriever, top_k_intents=2, top_k_sources=1)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(encoder.classify, "where is my order")
        while not classifier.calls:
            threading.Event().wait(0.001)
        classified = pool.submit(encoder.classify, "I want a refund")
        searched = pool.submit(encoder.search, "reset my password")
        while encoder.batcher._jobs.qsize() < 2:
            threading.Event().wait(0.001)
        classifier.release.set()
        predictions = [first.result(), classified.result()]
        sources = searched.result()
    assert classifier.calls == [["where is my order"], ["I want a refund"]]
    assert retriever.calls == [["reset my password"]]  # in the second batch, alone
    assert encoder.batcher.batches == 2
    assert predictions[1] == classifier.assess(["I want a refund"], 2)[0]
    assert sources == retriever.search(["reset my password"], 1)[0]

"""Sentence embeddings shared by several concerns: the embedding function's type, and a
wrapper that embeds each text once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> one vector per text


class RememberedEmbed:
    """`embed`, remembering each text's vector (up to `capacity` texts, oldest dropped
    first), so texts asked for again are embedded once: the logged questions of a page
    reloaded often, the past answers the grounding check compares written ones with."""

    def __init__(self, embed: Embed, capacity: int = 50_000) -> None:
        self._embed, self.capacity = embed, capacity
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # pages are served from several threads

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.asarray(self._embed([]), dtype=np.float32)
        with self._lock:
            known = {text: self._vectors.get(text) for text in texts}
        new = [text for text, vector in known.items() if vector is None]
        if new:
            vectors = np.asarray(self._embed(new), dtype=np.float32)
            known.update(zip(new, vectors, strict=True))
            self._remember(dict(zip(new, vectors, strict=True)))
        return np.stack([known[text] for text in texts])

    def _remember(self, vectors: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._vectors.update(vectors)
            for oldest in list(self._vectors)[: max(0, len(self._vectors) - self.capacity)]:
                del self._vectors[oldest]

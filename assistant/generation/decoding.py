"""Writing an answer a token at a time: greedy decoding over a `NextTokens` model.

The loop is ours rather than `transformers`' `generate`, so that the same greedy
search, repetition rule and stopping run on either form of the model: the ONNX
export (`onnx_decoder.py`, served by ONNX Runtime without PyTorch) or the PyTorch
model (`TorchDecoder`: a GPU without ONNX Runtime's CUDA provider, or a version
saved before the export existed). For a generator this small, `generate`'s own
bookkeeping took longer than the model: about 4 ms a token against 0.6 ms for the
exported model in ONNX Runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np


class NextTokens(Protocol):
    """A causal language model that scores the next token, keeping its own cache."""

    def start(self, prompt: Sequence[int]) -> tuple[np.ndarray, Any]:
        """The next token's logits after `prompt`, and the state to continue from."""
        ...

    def step(self, token: int, state: Any) -> tuple[np.ndarray, Any]:
        """The logits after one more token, and the state after it."""
        ...


class Detokenizer(Protocol):
    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens left out."""
        ...


def greedy_tokens(
    model: NextTokens,
    prompt: Sequence[int],
    end: int,
    max_tokens: int,
    repeat_ngram: int,
    stop: threading.Event,
) -> Iterator[int]:
    """The answer's tokens, most likely first, until `end`, `max_tokens` or `stop` is set.
    No n-gram of `repeat_ngram` tokens appears twice in the answer; the prompt is not
    counted, so the answer may quote the past answers it is grounded in."""
    logits, state = model.start(prompt)
    written: list[int] = []
    while len(written) < max_tokens and not stop.is_set():
        banned = repeating_next_tokens(written, repeat_ngram)
        if banned:
            logits = logits.copy()
            logits[banned] = -np.inf
        token = int(logits.argmax())
        if token == end:
            return
        written.append(token)
        yield token
        if len(written) < max_tokens:
            logits, state = model.step(token, state)


def repeating_next_tokens(ids: Sequence[int], size: int) -> list[int]:
    """Tokens that would complete an n-gram of `size` already present in `ids`."""
    if size < 2 or len(ids) < size:
        return []
    prefix = list(ids[len(ids) - size + 1 :])
    return [
        ids[start + size - 1]
        for start in range(len(ids) - size + 1)
        if list(ids[start : start + size - 1]) == prefix
    ]


def text_pieces(tokens: Iterator[int], tokenizer: Detokenizer) -> Iterator[str]:
    """The text of `tokens` in whole words as they come: a byte-level token can end inside a
    character or a word, so text is released up to its last space, the rest at the end."""
    ids: list[int] = []
    released = 0
    for token in tokens:
        ids.append(token)
        text = tokenizer.decode(ids)
        cut = text.rfind(" ") + 1
        if cut > released:
            yield text[released:cut]
            released = cut
    rest = tokenizer.decode(ids)[released:]
    if rest:
        yield rest


class TorchDecoder:
    """A `transformers` causal LM (GPT-2) on PyTorch, with its key-value cache."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model.to(device).eval()
        self.device = device

    def start(self, prompt: Sequence[int]) -> tuple[np.ndarray, Any]:
        return self._run([list(prompt)], None)

    def step(self, token: int, state: Any) -> tuple[np.ndarray, Any]:
        return self._run([[token]], state)

    def _run(self, ids: list[list[int]], cache: Any) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor(ids, device=self.device), cache=cache, use_cache=True
            )
        return output.logits[0, -1].float().cpu().numpy(), output.cache

"""Writing an answer a token at a time: greedy decoding over a `NextTokens` model.

Two ways to choose the tokens: `greedy_tokens`, free to write any text, and
`copying_tokens`, which may only write whole sentences of the past answers in the
prompt, choosing which and in what order. A small model trained from scratch on a
company's answers learns its phrases but not the language: written freely, its
answers run the phrases together ("You can't be returned for 1 hour of delivery"),
so it copies whole sentences instead.

The loops are ours rather than `transformers`' `generate`, so that the same greedy
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

    def feed(self, tokens: Sequence[int], state: Any) -> tuple[np.ndarray, Any]:
        """The logits after `tokens` more (one pass however many), and the state after."""
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
            logits, state = model.feed([token], state)


def copying_tokens(
    model: NextTokens,
    prompt: Sequence[int],
    sentences: Sequence[Sequence[int]],
    end: int,
    max_tokens: int,
    stop: threading.Event,
) -> Iterator[int]:
    """The answer's tokens when it may only be made of whole `sentences` (token ids): each
    step takes the most likely token that goes on with a sentence or, once a sentence is
    complete, starts another or ends the answer. No sentence is written twice, and one is
    started only if it fits in what is left of `max_tokens`, so an answer never stops
    mid-sentence; it is empty when none fits.

    Where only one sentence can go on, its next tokens are no choice: they are written
    without asking the model, which then reads them all in one pass. The answer is the
    same as asking at every token, for a fraction of the passes."""
    choices = SentenceChoices(sentences)
    logits, state = model.start(prompt)
    written = 0
    while not stop.is_set():
        allowed = choices.allowed(max_tokens - written)
        if choices.complete:
            allowed.add(end)
        if not allowed:
            return
        candidates = np.array(sorted(allowed))
        token = int(candidates[logits[candidates].argmax()])
        if token == end:
            return
        choices.advance(token)
        tokens = [token, *choices.forced(max_tokens - written - 1)]
        written += len(tokens)
        yield from tokens
        logits, state = model.feed(tokens, state)


class SentenceChoices:
    """Where a copied answer stands: the sentence it is writing (`prefix`) and those it
    may still write."""

    def __init__(self, sentences: Sequence[Sequence[int]]) -> None:
        self.remaining = list(dict.fromkeys(tuple(s) for s in sentences if s))
        self.prefix: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether the tokens since the last sentence make a whole one."""
        return self.prefix in self.remaining

    def allowed(self, budget: int) -> set[int]:
        """Tokens that go on with the sentence, or start one once it is complete, within
        `budget` tokens to the end of that sentence."""
        size = len(self.prefix)
        tokens = {s[size] for s in self._continuing() if len(s) - size <= budget}
        if self.complete:
            tokens |= {s[0] for s in self.remaining if s != self.prefix and len(s) <= budget}
        return tokens

    def forced(self, budget: int) -> list[int]:
        """Take the tokens that follow with no choice, within `budget`: while the sentence
        is incomplete and only one token can go on with it."""
        tokens: list[int] = []
        while not self.complete and len(tokens) < budget:
            following = self.allowed(budget - len(tokens))
            if len(following) != 1:
                break
            token = following.pop()
            self.advance(token)
            tokens.append(token)
        return tokens

    def advance(self, token: int) -> None:
        """Take `token`: it goes on with the sentence if it can, else starts the next."""
        if any(s[len(self.prefix)] == token for s in self._continuing()):
            self.prefix += (token,)
        else:
            self.remaining.remove(self.prefix)
            self.prefix = (token,)

    def _continuing(self) -> list[tuple[int, ...]]:
        size = len(self.prefix)
        return [s for s in self.remaining if len(s) > size and s[:size] == self.prefix]


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

    def feed(self, tokens: Sequence[int], state: Any) -> tuple[np.ndarray, Any]:
        return self._run([list(tokens)], state)

    def _run(self, ids: list[list[int]], cache: Any) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor(ids, device=self.device),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return output.logits[0, -1].float().cpu().numpy(), output.cache

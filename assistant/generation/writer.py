"""The GPT-2 answer generator: a prompt of past agent answers and the question, streamed out.

The prompt is built by `prompt_ids` for training and serving alike:

    <|context|> past answer 1 <|context|> past answer 2 ... <|question|> question <|answer|>

and the model writes the answer, ending it with `<|endofanswer|>`. Training is in
`generation/training.py`; checking what it wrote is in `generation/grounding.py`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoTokenizer,
    GPT2LMHeadModel,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)
from transformers.pytorch_utils import Conv1D

from assistant.core.base_models import lower_thread_priority, pick_device
from assistant.core.errors import ArtifactError, ConfigError
from assistant.core.settings import Settings
from assistant.lifecycle.versions import read_version, version_path

CONTEXT = "<|context|>"
QUESTION = "<|question|>"
ANSWER = "<|answer|>"
END = "<|endofanswer|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [CONTEXT, QUESTION, ANSWER, END, PAD]
METADATA_FILE = "generator.json"
GENERATOR_FORMAT = 1
WHAT = "answer generator"
REBUILD_HINT = "Run `assistant train-generator` (or `python launch.py`) to train it again."


@dataclass(frozen=True)
class PromptLimits:
    """How much of each part goes into a prompt, in tokens; the same in training and serving."""

    context_answers: int = 2
    context_tokens: int = 64
    question_tokens: int = 32
    answer_tokens: int = 160  # the training cut-off and the generation cap

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def prompt_ids(
    tokenizer: Any, question: str, contexts: Sequence[str], limits: PromptLimits
) -> list[int]:
    """Token ids of the prompt: the first `context_answers` past answers, then the question."""
    ids: list[int] = []
    for context in contexts[: limits.context_answers]:
        ids += [
            _special_id(tokenizer, CONTEXT),
            *_encode(tokenizer, context, limits.context_tokens),
        ]
    ids += [_special_id(tokenizer, QUESTION), *_encode(tokenizer, question, limits.question_tokens)]
    return [*ids, _special_id(tokenizer, ANSWER)]


def answer_ids(tokenizer: Any, answer: str, limits: PromptLimits) -> list[int]:
    """The answer as the model learns to write it; the end marker only when it fits whole."""
    ids = _encode(tokenizer, answer, limits.answer_tokens + 1)
    if len(ids) > limits.answer_tokens:
        return ids[: limits.answer_tokens]
    return [*ids, _special_id(tokenizer, END)]


def _encode(tokenizer: Any, text: str, limit: int) -> list[int]:
    return tokenizer.encode(" " + text.strip(), add_special_tokens=False)[:limit]


def _special_id(tokenizer: Any, token: str) -> int:
    return int(tokenizer.convert_tokens_to_ids(token))


class NoRepeatInAnswer(LogitsProcessor):
    """Forbids repeating an n-gram of the answer being written.

    Unlike `no_repeat_ngram_size`, the prompt is not counted, so the answer may
    still quote the past answers it is grounded in.
    """

    def __init__(self, size: int, prompt_length: int) -> None:
        self.size = size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            banned = _repeating_next_tokens(ids, self.size)
            if banned:
                scores[row, banned] = -float("inf")
        return scores


def _repeating_next_tokens(ids: list[int], size: int) -> list[int]:
    """Tokens that would complete an n-gram already present in `ids`."""
    if size < 2 or len(ids) < size:
        return []
    prefix = ids[len(ids) - size + 1 :]
    return [
        ids[start + size - 1]
        for start in range(len(ids) - size + 1)
        if ids[start : start + size - 1] == prefix
    ]


class StopWhenSet(StoppingCriteria):
    """Stops generation once `event` is set, e.g. when the text is found to be ungrounded."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: Any) -> bool:
        return self.event.is_set()


class Gpt2AnswerWriter:
    """A loaded generator; `stream` may be called from several threads at once."""

    def __init__(
        self,
        model: GPT2LMHeadModel,
        tokenizer: Any,
        metadata: dict[str, Any],
        device: str,
        repeat_ngram: int = 4,
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.device = device
        self.limits = PromptLimits(**metadata["limits"])
        self.grounding_threshold = float(metadata["grounding_threshold"])
        self.repeat_ngram = repeat_ngram

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def stream(
        self, question: str, contexts: Sequence[str], stop: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield the answer in pieces as it is written; setting `stop` ends it early."""
        prompt = prompt_ids(self.tokenizer, question, contexts, self.limits)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60
        )
        stop = stop or threading.Event()
        arguments = self._generation_arguments(prompt, stop) | {"streamer": streamer}
        worker = threading.Thread(target=self._generate, args=(arguments,), daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            stop.set()  # the caller stopped reading: let the worker finish early
            worker.join()

    def generate(self, question: str, contexts: Sequence[str]) -> str:
        """The whole answer at once."""
        return "".join(self.stream(question, contexts)).strip()

    def _generation_arguments(self, prompt: list[int], stop: threading.Event) -> dict[str, Any]:
        end, pad = (_special_id(self.tokenizer, token) for token in (END, PAD))
        return {
            "input_ids": torch.tensor([prompt], device=self.device),
            "attention_mask": torch.ones(1, len(prompt), dtype=torch.long, device=self.device),
            "max_new_tokens": self.limits.answer_tokens,
            "do_sample": False,
            "use_cache": True,
            "eos_token_id": end,
            "pad_token_id": pad,
            "logits_processor": LogitsProcessorList(
                [NoRepeatInAnswer(self.repeat_ngram, len(prompt))]
            ),
            "stopping_criteria": StoppingCriteriaList([StopWhenSet(stop)]),
        }

    def _generate(self, arguments: dict[str, Any]) -> None:
        lower_thread_priority()
        with torch.inference_mode():
            self.model.generate(**arguments)

    def quantize(self) -> None:
        """int8 dynamic quantization of every linear layer (CPU only)."""
        if self.device != "cpu":
            raise ConfigError("int8 dynamic quantization runs on the CPU; set device = 'cpu'")
        self.model = quantize_gpt2(self.model)
        self.metadata = {**self.metadata, "int8": True}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        version: str | None = None,
        previous: Gpt2AnswerWriter | None = None,
    ) -> Gpt2AnswerWriter:
        """The configured answer writer at `version` (None: the live one)."""
        return cls.load(
            settings.generator_models_dir,
            settings.models.device,
            version,
            int8=settings.generator.int8,
            repeat_ngram=settings.generator.repeat_ngram,
        )

    @classmethod
    def load(
        cls,
        models_dir: Path,
        device: str = "auto",
        version: str | None = None,
        int8: bool = False,
        repeat_ngram: int = 4,
    ) -> Gpt2AnswerWriter:
        """Load the current version (or `version`), refusing one that is incomplete."""
        path, metadata = read_version(
            models_dir, version, METADATA_FILE, GENERATOR_FORMAT, WHAT, REBUILD_HINT
        )
        try:
            model = GPT2LMHeadModel.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as error:
            raise ArtifactError(
                f"the generator in {path} cannot be loaded ({error}). {REBUILD_HINT}"
            ) from error
        missing = [token for token in SPECIAL_TOKENS if token not in tokenizer.get_vocab()]
        if missing or len(tokenizer) > model.config.vocab_size:
            raise ArtifactError(
                f"the generator's tokenizer in {path} does not match its model. {REBUILD_HINT}"
            )
        generator = cls(model, tokenizer, metadata, pick_device(device), repeat_ngram)
        if int8:
            generator.quantize()
        return generator


def generator_path(models_dir: Path, version: str | None = None) -> Path:
    return version_path(models_dir, version, WHAT, REBUILD_HINT)


def quantize_gpt2(model: GPT2LMHeadModel) -> torch.nn.Module:
    """An int8 copy of `model`. GPT-2 keeps its projections in `Conv1D` layers, which dynamic
    quantization skips, so they become `Linear` layers first."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                setattr(module, name, _as_linear(child))
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _as_linear(layer: Conv1D) -> torch.nn.Linear:
    inputs, outputs = layer.weight.shape  # Conv1D stores the weight transposed
    linear = torch.nn.Linear(inputs, outputs)
    with torch.no_grad():
        linear.weight.copy_(layer.weight.t())
        linear.bias.copy_(layer.bias)
    return linear

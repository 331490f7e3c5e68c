"""The GPT-2 answer generator: a prompt of past agent answers and the question, streamed out.

The prompt is built by `prompt_ids` for training and serving alike:

    <|context|> past answer 1 <|context|> past answer 2 ... <|question|> question <|answer|>

and the model writes the answer, ending it with `<|endofanswer|>`: freely, or only in
whole sentences of the past answers in its prompt (`decoding_for`, `decoding.py`).
Training is in `generation/training.py`; checking what it wrote is in
`generation/grounding.py`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.core.base_models import lower_thread_priority, pick_device
from assistant.core.errors import ArtifactError, ConfigError
from assistant.core.files import read_json
from assistant.core.onnx_forms import INT8, load_form
from assistant.core.settings import Settings
from assistant.generation.decoding import (
    NextTokens,
    TorchDecoder,
    copying_tokens,
    greedy_tokens,
    text_pieces,
)
from assistant.generation.onnx_decoder import loaded_decoder
from assistant.lifecycle.versions import read_version, version_path

CONTEXT = "<|context|>"
QUESTION = "<|question|>"
ANSWER = "<|answer|>"
END = "<|endofanswer|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [CONTEXT, QUESTION, ANSWER, END, PAD]
METADATA_FILE = "generator.json"
TOKENIZER_FILE = "tokenizer.json"
GENERATOR_FORMAT = 1
WHAT = "answer generator"
FREE = "free"
SENTENCES = "sentences"
# A sentence ends at . ! or ? before a space and a capital, a digit, a quote or a bracket
# ("$4.95" and "e.g. the" do not end one).
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
REBUILD_HINT = "Run `assistant train-generator` (or `python launch.py`) to train it again."

log = logging.getLogger(__name__)


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


def sentence_ids(tokenizer: Any, contexts: Sequence[str]) -> list[list[int]]:
    """Every sentence of `contexts` as an answer holds it: after a space, as `_encode`
    starts an answer (byte-level BPE splits words at spaces, so a sentence has the same
    tokens alone as inside the text)."""
    return [
        tokenizer.encode(" " + sentence)
        for context in contexts
        for sentence in SENTENCE_BREAK.split(context.strip())
        if sentence
    ]


def decoding_for(setting: str, metadata: dict[str, Any]) -> str:
    """How a version writes: "auto" copies whole sentences for a model trained from
    scratch (it knows the company's phrases, not the language) and writes freely for one
    fine-tuned from a pretrained GPT-2."""
    if setting != "auto":
        return setting
    return FREE if metadata.get("base_model") else SENTENCES


def _encode(tokenizer: Any, text: str, limit: int) -> list[int]:
    return tokenizer.encode(" " + text.strip(), add_special_tokens=False)[:limit]


def _special_id(tokenizer: Any, token: str) -> int:
    return int(tokenizer.convert_tokens_to_ids(token))


class AnswerTokens:
    """The generator's byte-level BPE tokenizer, read from the version's `tokenizer.json`
    with the `tokenizers` library (the same ids as the `transformers` tokenizer it was
    saved from, without importing transformers)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, folder: Path) -> AnswerTokens:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(folder / TOKENIZER_FILE)))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)


class Gpt2AnswerWriter:
    """A loaded generator; `stream` may be called from several threads at once."""

    def __init__(
        self,
        decoder: NextTokens,
        tokenizer: AnswerTokens,
        metadata: dict[str, Any],
        runtime: str,
        repeat_ngram: int = 4,
        decoding: str = FREE,
    ) -> None:
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.runtime = runtime
        self.limits = PromptLimits(**metadata["limits"])
        self.grounding_threshold = float(metadata["grounding_threshold"])
        relevance = metadata.get("relevance_threshold")  # None: a version saved before it
        self.relevance_threshold = None if relevance is None else float(relevance)
        self.repeat_ngram = repeat_ngram
        self.decoding = decoding

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def stream(
        self, question: str, contexts: Sequence[str], stop: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield the answer in pieces as it is written; setting `stop` ends it early.

        The tokens are decoded in a thread of lower priority than the server's, so a
        written answer takes the CPU only when template and retrieval replies leave it."""
        prompt = prompt_ids(self.tokenizer, question, contexts, self.limits)
        sentences = None
        if self.decoding == SENTENCES:
            sentences = sentence_ids(self.tokenizer, contexts[: self.limits.context_answers])
        stop = stop or threading.Event()
        pieces: queue.Queue[str | BaseException | None] = queue.Queue()
        worker = threading.Thread(
            target=self._write, args=(prompt, sentences, stop, pieces), daemon=True
        )
        worker.start()
        try:
            while (piece := pieces.get()) is not None:
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            stop.set()  # the caller stopped reading: let the worker finish early
            worker.join()

    def generate(self, question: str, contexts: Sequence[str]) -> str:
        """The whole answer at once."""
        return "".join(self.stream(question, contexts)).strip()

    def _write(
        self,
        prompt: list[int],
        sentences: list[list[int]] | None,
        stop: threading.Event,
        pieces: queue.Queue,
    ) -> None:
        lower_thread_priority()
        end, limit = _special_id(self.tokenizer, END), self.limits.answer_tokens
        try:
            if sentences is None:
                tokens = greedy_tokens(self.decoder, prompt, end, limit, self.repeat_ngram, stop)
            else:
                tokens = copying_tokens(self.decoder, prompt, sentences, end, limit, stop)
            for piece in text_pieces(tokens, self.tokenizer):
                pieces.put(piece)
        except Exception as error:  # handed to the reading thread, which raises it
            pieces.put(error)
        finally:
            pieces.put(None)

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
            runtime=settings.generator.runtime,
            decoding=settings.generator.decoding,
        )

    @classmethod
    def load(
        cls,
        models_dir: Path,
        device: str = "auto",
        version: str | None = None,
        int8: bool = False,
        repeat_ngram: int = 4,
        runtime: str = "auto",
        decoding: str = "auto",
    ) -> Gpt2AnswerWriter:
        """Load the current version (or `version`), refusing one that is incomplete. Its
        ONNX form serves when it has one (on the CPU, or a GPU with ONNX Runtime's CUDA
        provider), PyTorch otherwise; `runtime = "torch"` serves PyTorch, and `int8` the
        int8 ONNX form (on the CPU). `decoding` is "free", "sentences" or "auto"
        (`decoding_for`)."""
        path, metadata = read_version(
            models_dir, version, METADATA_FILE, GENERATOR_FORMAT, WHAT, REBUILD_HINT
        )
        tokenizer = _load_tokenizer(path)
        resolved = pick_device(device)
        record = metadata.get("onnx")
        form = _serving_form(int8, runtime, resolved, record)
        # One thread: a written answer leaves the other cores to the encoders.
        session = load_form(path, record, resolved, form, REBUILD_HINT, threads=1)
        if session is not None:
            decoder: NextTokens = loaded_decoder(session, record)
            served = session.runtime
        else:
            decoder = TorchDecoder(_torch_model(path), resolved)
            served = f"torch ({resolved})"
        return cls(
            decoder, tokenizer, metadata, served, repeat_ngram, decoding_for(decoding, metadata)
        )


def _serving_form(
    int8: bool, runtime: str, device: str, record: Mapping[str, Any] | None = None
) -> str:
    """Which form `load_form` serves ("auto", "fp32", "int8" or "torch") for the generator's
    settings and the forms saved with the version (`record`)."""
    if not int8:
        return runtime
    if runtime == "torch":
        raise ConfigError(
            "generator_int8 serves the int8 ONNX form: it cannot run with generator_runtime = "
            "'torch'"
        )
    if device != "cpu":
        raise ConfigError("the generator's int8 form runs on the CPU; set device = 'cpu'")
    if record and INT8 not in record.get("files", {}):
        log.warning(
            "this generator version was saved without an int8 form: serving fp32 (%s makes one)",
            "assistant train-generator",
        )
        return runtime
    return INT8


def _load_tokenizer(path: Path) -> AnswerTokens:
    try:
        tokenizer = AnswerTokens.load(path)
        vocabulary = int(read_json(path / "config.json", WHAT)["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError, ArtifactError) as error:
        raise ArtifactError(
            f"the generator in {path} cannot be loaded ({error}). {REBUILD_HINT}"
        ) from error
    missing = [token for token in SPECIAL_TOKENS if tokenizer.convert_tokens_to_ids(token) is None]
    if missing or len(tokenizer) > vocabulary:
        raise ArtifactError(
            f"the generator's tokenizer in {path} does not match its model. {REBUILD_HINT}"
        )
    return tokenizer


def _torch_model(path: Path) -> Any:
    from transformers import GPT2LMHeadModel

    try:
        return GPT2LMHeadModel.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ArtifactError(
            f"the generator in {path} cannot be loaded ({error}). {REBUILD_HINT}"
        ) from error


def generator_path(models_dir: Path, version: str | None = None) -> Path:
    return version_path(models_dir, version, WHAT, REBUILD_HINT)

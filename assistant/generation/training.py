"""Training the answer generator on historical Q&A pairs, and choosing its grounding threshold.

1. Each pair's prompt holds the answers retrieved for its question with the pair
   itself left out, exactly as serving will retrieve them for a new question.
2. The tokenizer and model: a configured GPT-2 (folder or hub name) gets the
   prompt markers added and is fine-tuned; with none configured, a byte-level
   BPE tokenizer is trained on the pairs and a small GPT-2 is trained from
   scratch. Only the answer tokens are learned; the prompt is context.
3. The grounding threshold: real agent answers are compared with the answers
   retrieved for their questions (leave-one-out), and the threshold is the
   `grounding_quantile` of those similarities. A generated answer less tied to
   its context than nearly all real answers are is not shown.
4. The relevance threshold, the same way: the `grounding_quantile` of real
   answers' similarity to their own question. A generated answer further from
   the question than nearly all real answers are from theirs is not shown.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    EarlyStoppingCallback,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    set_seed,
)

from assistant.core.base_models import load_base_model, pick_device
from assistant.core.embeddings import RememberedEmbed
from assistant.core.errors import TrainingError
from assistant.core.files import write_json
from assistant.core.settings import Settings
from assistant.datasets.loading import QAPair
from assistant.generation.grounding import Encode
from assistant.generation.onnx_decoder import export_decoder
from assistant.generation.writer import (
    ANSWER,
    CONTEXT,
    END,
    GENERATOR_FORMAT,
    METADATA_FILE,
    PAD,
    QUESTION,
    SPECIAL_TOKENS,
    PromptLimits,
    answer_ids,
    prompt_ids,
)
from assistant.lifecycle.runs import resume_point, run_directory, trainer_arguments
from assistant.lifecycle.versions import new_version, publish_version
from assistant.retrieval.index import FaissRetriever

VALIDATION_SHARE = 0.1
Row = dict[str, list[int]]  # one training example: `input_ids`, and `labels` -100 on the prompt
WARMUP_SHARE = 0.05  # a float below 1 is a share of the training steps
SCRATCH_LEARNING_RATE = 1e-3
FINE_TUNE_LEARNING_RATE = 5e-5
RECIPE_FIELDS = {
    "generator_base_model",
    "generator_layers",
    "generator_hidden_size",
    "generator_heads",
    "generator_vocab_size",
    "generator_epochs",
    "generator_batch_size",
    "generator_learning_rate",
    "generator_context_answers",
    "generator_context_tokens",
    "generator_question_tokens",
    "generator_answer_tokens",
    "embedding_model",
    "seed",
}


@dataclass(frozen=True)
class GeneratorReport:
    version: str
    path: Path
    metrics: dict[str, Any]


def prompt_limits(settings: Settings) -> PromptLimits:
    return PromptLimits(
        settings.generator_context_answers,
        settings.generator_context_tokens,
        settings.generator_question_tokens,
        settings.generator_answer_tokens,
    )


def leave_one_out_contexts(
    retriever: FaissRetriever, pairs: Sequence[QAPair], k: int
) -> list[list[str]]:
    """For each pair, the answers of the `k` closest other questions, closest first."""
    results = retriever.search([pair.question for pair in pairs], k + 1)
    contexts = []
    for pair, sources in zip(pairs, results, strict=True):
        others = [
            s.answer for s in sources if (s.question, s.answer) != (pair.question, pair.answer)
        ]
        contexts.append(others[:k])
    return contexts


def train_generator(
    pairs: Sequence[QAPair],
    settings: Settings,
    data_checksum: str,
    retriever: FaissRetriever | None = None,
    fresh: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    make_current: bool = True,
    base_checksum: str | None = None,
) -> GeneratorReport:
    """Train on `pairs` (retrieving over them), choose the grounding threshold, publish.

    `base_checksum` is the dataset folder's part of `pairs` when they also hold
    answers from the conversation log; `make_current` False saves a candidate.
    """
    if len(pairs) < 2:
        raise TrainingError("the generator needs at least two Q&A pairs to learn from")
    started = time.perf_counter()
    set_seed(settings.seed)
    limits = prompt_limits(settings)
    retriever = retriever or FaissRetriever.build(pairs, settings)
    contexts = leave_one_out_contexts(retriever, pairs, limits.context_answers)
    tokenizer, model = _load_or_create(pairs, settings, limits)
    run_dir = run_directory(
        settings.generator_models_dir,
        [data_checksum, settings.model_dump(include=RECIPE_FIELDS, mode="json")],
    )
    train, held_out = _split(_examples(tokenizer, pairs, contexts, limits), settings.seed)
    validation_loss = _fit(model, tokenizer, train, held_out, settings, run_dir, fresh, callbacks)
    encode = RememberedEmbed(retriever.encode)  # both thresholds compare the same answers
    threshold = grounding_threshold(encode, pairs, contexts, settings.grounding_quantile)
    relevance = relevance_threshold(encode, pairs, settings.grounding_quantile)
    metrics = {
        "validation_loss": validation_loss,
        "validation_perplexity": float(np.exp(validation_loss)),
        "grounding_threshold": threshold,
        "relevance_threshold": relevance,
        "pairs": len(pairs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    metadata = {
        "format": GENERATOR_FORMAT,
        "version": new_version(),
        "base_model": settings.generator_base_model,
        "embedding_model": settings.embedding_model,
        "data_checksum": data_checksum,
        "base_checksum": base_checksum or data_checksum,
        "limits": limits.to_dict(),
        "grounding_threshold": threshold,
        "relevance_threshold": relevance,
        "recipe": settings.model_dump(include=RECIPE_FIELDS, mode="json"),
        "metrics": metrics,
    }

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if settings.generator.runtime != "torch":
            metadata["onnx"] = export_decoder(model.cpu(), folder, held_out)
            metrics["int8_check"] = metadata["onnx"].get("int8_check")
        write_json(folder / METADATA_FILE, metadata)

    path = publish_version(settings.generator_models_dir, metadata["version"], write, make_current)
    shutil.rmtree(run_dir, ignore_errors=True)
    return GeneratorReport(metadata["version"], path, metrics)


def grounding_threshold(
    encode: Encode, pairs: Sequence[QAPair], contexts: Sequence[Sequence[str]], quantile: float
) -> float:
    """The `quantile` of real answers' similarity to the answers retrieved for their question."""
    texts = sorted({pair.answer for pair in pairs} | {c for row in contexts for c in row})
    vectors = dict(zip(texts, encode(texts), strict=True))
    similarities = [
        max(float(vectors[pair.answer] @ vectors[c]) for c in row)
        for pair, row in zip(pairs, contexts, strict=True)
        if row
    ]
    return float(np.quantile(similarities, quantile)) if similarities else 0.0


def relevance_threshold(encode: Encode, pairs: Sequence[QAPair], quantile: float) -> float:
    """The `quantile` of real answers' similarity to their own question."""
    questions = encode([pair.question for pair in pairs])
    answers = encode([pair.answer for pair in pairs])
    return float(np.quantile((questions * answers).sum(axis=1), quantile))


def _load_or_create(
    pairs: Sequence[QAPair], settings: Settings, limits: PromptLimits
) -> tuple[Any, GPT2LMHeadModel]:
    length = _longest_sequence(limits)
    if settings.generator_base_model is None:
        tokenizer = train_tokenizer(pairs, settings.generator_vocab_size)
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=max(512, length),
            n_embd=settings.generator_hidden_size,
            n_layer=settings.generator_layers,
            n_head=settings.generator_heads,
            bos_token_id=tokenizer.convert_tokens_to_ids(END),
            eos_token_id=tokenizer.convert_tokens_to_ids(END),
            pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        )
        return tokenizer, GPT2LMHeadModel(config)
    tokenizer, model = load_base_model(settings.generator_base_model, GPT2LMHeadModel)
    tokenizer.add_special_tokens(
        {"pad_token": PAD, "additional_special_tokens": [CONTEXT, QUESTION, ANSWER, END]}
    )
    model.resize_token_embeddings(len(tokenizer))
    if length > model.config.n_positions:
        raise TrainingError(
            f"prompts of up to {length} tokens do not fit the base model's "
            f"{model.config.n_positions} positions; lower the generator_*_tokens settings"
        )
    return tokenizer, model


def _longest_sequence(limits: PromptLimits) -> int:
    return (
        limits.context_answers * (limits.context_tokens + 1)
        + limits.question_tokens
        + limits.answer_tokens
        + 3
    )


def train_tokenizer(pairs: Sequence[QAPair], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (as GPT-2's) learned from the questions and answers."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    texts = [" " + text for pair in pairs for text in (pair.question, pair.answer)]
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END, pad_token=PAD)


def _examples(
    tokenizer: Any,
    pairs: Sequence[QAPair],
    contexts: Sequence[Sequence[str]],
    limits: PromptLimits,
) -> list[Row]:
    rows = []
    for pair, context in zip(pairs, contexts, strict=True):
        prompt = prompt_ids(tokenizer, pair.question, context, limits)
        answer = answer_ids(tokenizer, pair.answer, limits)
        rows.append({"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer})
    return rows


class _CausalCollator:
    """Pads a batch; padding is masked out of attention and of the loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for row in rows:
            padding = width - len(row["input_ids"])
            batch["input_ids"].append(row["input_ids"] + [self.pad_id] * padding)
            batch["attention_mask"].append([1] * len(row["input_ids"]) + [0] * padding)
            batch["labels"].append(row["labels"] + [-100] * padding)
        return {key: torch.tensor(value) for key, value in batch.items()}


def _split(rows: list[Row], seed: int) -> tuple[list[Row], list[Row]]:
    """A seeded `VALIDATION_SHARE` of the rows held out (at least one), and the rest."""
    shuffled = random.Random(seed).sample(rows, len(rows))
    held_out = max(1, round(VALIDATION_SHARE * len(rows)))
    return shuffled[held_out:], shuffled[:held_out]


def _fit(
    model: GPT2LMHeadModel,
    tokenizer: Any,
    train: list[Row],
    validation: list[Row],
    settings: Settings,
    run_dir: Path,
    fresh: bool,
    callbacks: Sequence[TrainerCallback],
) -> float:
    """Fine-tune on `train`, early-stopped on `validation`; returns the validation loss."""
    arguments = trainer_arguments(
        run_dir,
        settings.generator_epochs,
        settings.generator_batch_size,
        settings.generator_batch_size,
        settings.seed,
        pick_device(settings.device),
        settings.bf16,
        learning_rate=_learning_rate(settings),
        warmup_steps=WARMUP_SHARE,
        weight_decay=settings.weight_decay,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=_CausalCollator(tokenizer.convert_tokens_to_ids(PAD)),
        callbacks=[EarlyStoppingCallback(settings.early_stopping_patience), *callbacks],
    )
    trainer.train(resume_from_checkpoint=resume_point(run_dir, fresh))
    return float(trainer.evaluate()["eval_loss"])


def _learning_rate(settings: Settings) -> float:
    if settings.generator_learning_rate is not None:
        return settings.generator_learning_rate
    scratch = settings.generator_base_model is None
    return SCRATCH_LEARNING_RATE if scratch else FINE_TUNE_LEARNING_RATE

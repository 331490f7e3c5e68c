"""The answer generator's ONNX form: one decoding step with its key-value cache.

At training time the GPT-2 model is exported as one step: the new token ids and
the cache of every earlier position in, the next token's logits and the grown
cache out. The cache travels as one tensor, `(layers, 2, 1, heads, positions,
head size)`, so the graph has two inputs whatever the depth. The prompt is the
first step, with an empty cache. The export is checked against PyTorch on a
prompt and a step and saved with the version; serving then needs neither PyTorch
nor transformers. A model that cannot be exported is served by PyTorch.

Beside it goes an int8 form (`assistant.core.int8`: every linear layer, the tied
output layer included, on 7-bit weights and per-token activations), served when
`generator_int8` asks for it. How far it strays from fp32 is measured on the
held-out answers, teacher-forced: how often both forms pick the same next token,
and each form's loss on the real answer. Both figures are saved with the version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core import int8
from assistant.core.onnx_forms import (
    AGREEMENT,
    CPU_PROVIDER,
    FP32,
    INT8,
    Session,
    export,
    file_record,
    open_session,
    versions,
)

DECODER_FILE = "decoder.onnx"
INT8_DECODER_FILE = "decoder.int8.onnx"
CHECKED_TOKENS = 2048  # held-out answer tokens the int8 form is compared on, at most
INPUTS = ("input_ids", "past")
OUTPUTS = ("logits", "present")
EXAMPLE_PROMPT = (5, 6, 7)

log = logging.getLogger(__name__)


class OnnxDecoder:
    """`NextTokens` on an exported step; the state is the cache tensor."""

    def __init__(self, session: Session, cache_shape: Sequence[int]) -> None:
        self.session = session
        layers, pair, heads, head_size = cache_shape
        self.empty_cache = np.zeros((layers, pair, 1, heads, 0, head_size), np.float32)

    def start(self, prompt: Sequence[int]) -> tuple[np.ndarray, Any]:
        return self._run([list(prompt)], self.empty_cache)

    def feed(self, tokens: Sequence[int], state: Any) -> tuple[np.ndarray, Any]:
        return self._run([list(tokens)], state)

    def _run(self, ids: list[list[int]], cache: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, present = self.session.run({"input_ids": ids, "past": cache})
        return logits[0], present


def cache_shape(config: Any) -> list[int]:
    """`(layers, 2, heads, head size)`: the cache tensor's fixed axes for a GPT-2 config."""
    return [config.n_layer, 2, config.n_head, config.n_embd // config.n_head]


def export_decoder(
    model: Any, folder: Path, held_out: Sequence[Mapping[str, Sequence[int]]] = ()
) -> dict[str, Any]:
    """Export `model` (a GPT-2 `transformers` model) to `folder`, check it against PyTorch,
    add the int8 form and compare it with fp32 on `held_out` training rows (`input_ids`,
    and `labels` of -100 over the prompt): the record saved with the version. A failed
    export leaves no file and a record of why."""
    path = folder / DECODER_FILE
    shape = cache_shape(model.config)
    try:
        example = _example(shape, positions=len(EXAMPLE_PROMPT))
        export(
            _decoding_step(model),
            example,
            path,
            OUTPUTS,
            dynamic_axes={"input_ids": {1: "new"}, "past": {4: "positions"}},
        )
        exported = _opened(path, FP32, shape)
        disagreement = _disagreement(model, exported)
        if disagreement > AGREEMENT:
            raise ValueError(f"the export differs from PyTorch by {disagreement:.2g}")
    except Exception as error:  # the exporter and ONNX Runtime raise many kinds
        path.unlink(missing_ok=True)
        why = _why(error)
        log.warning("no ONNX decoder saved (%s): PyTorch will serve", why)
        return {"error": why}
    record = {
        "files": {FP32: file_record(path)},
        "chosen": FP32,
        "cache_shape": shape,
        "disagreement": disagreement,
        "exported_with": versions(),
    }
    _add_int8_form(record, exported, path, folder / INT8_DECODER_FILE, held_out)
    return record


def _add_int8_form(
    record: dict[str, Any],
    fp32: OnnxDecoder,
    source: Path,
    target: Path,
    held_out: Sequence[Mapping[str, Any]],
) -> None:
    """Quantise the fp32 graph at `source` to `target` and add the int8 form to `record`:
    its file and its comparison with `fp32`, or why there is none."""
    try:
        int8.quantise(source, target, operators=int8.MATMUL_AND_GEMM)
        check = compare_forms(fp32, _opened(target, INT8, record["cache_shape"]), held_out)
    except Exception as error:  # as above
        target.unlink(missing_ok=True)
        log.warning("no int8 ONNX decoder saved (%s)", _why(error))
        record["int8_error"] = _why(error)
        return
    record["files"][INT8] = file_record(target)
    record["int8_check"] = check


def compare_forms(
    fp32: OnnxDecoder, quantised: OnnxDecoder, rows: Sequence[Mapping[str, Sequence[int]]]
) -> dict[str, Any]:
    """How closely `quantised` follows `fp32` on the answer tokens of `rows`, each fed the
    real answer so far: the share of tokens where both pick the same next token, and
    each form's mean loss on the real next token."""
    reference, candidate = answer_predictions(fp32, rows), answer_predictions(quantised, rows)
    answers, tokens = reference[2], len(reference[0])
    same = sum(a == b for a, b in zip(reference[0], candidate[0], strict=True))
    return {
        "measure": "held-out answer tokens, teacher-forced",
        "answers": answers,
        "tokens": tokens,
        "top_token_agreement": round(same / tokens, 4) if tokens else None,
        "fp32_loss": round(float(np.mean(reference[1])), 4) if tokens else None,
        "int8_loss": round(float(np.mean(candidate[1])), 4) if tokens else None,
    }


def answer_predictions(
    decoder: OnnxDecoder, rows: Sequence[Mapping[str, Sequence[int]]], most: int = CHECKED_TOKENS
) -> tuple[list[int], list[float], int]:
    """For the answer tokens of `rows` (whole answers, up to `most` tokens): the decoder's
    top token there, given the prompt and the real answer before it, its loss (negative
    log-likelihood) on the real one, and how many answers they came from."""
    tops, losses, answers = [], [], 0
    for row in rows:
        ids, labels = list(row["input_ids"]), row["labels"]
        start = next((i for i, label in enumerate(labels) if label != -100), len(ids))
        if start == 0 or start == len(ids):
            continue
        if tops and len(tops) + len(ids) - start > most:
            break
        answers += 1
        logits, state = decoder.start(ids[:start])
        for position in range(start, len(ids)):
            tops.append(int(logits.argmax()))
            losses.append(_loss(logits, ids[position]))
            if position + 1 < len(ids):
                logits, state = decoder.feed([ids[position]], state)
    return tops, losses, answers


def _loss(logits: np.ndarray, token: int) -> float:
    shifted = logits.astype(np.float64) - logits.max()
    return float(np.log(np.exp(shifted).sum()) - shifted[token])


def _opened(path: Path, form: str, shape: Sequence[int]) -> OnnxDecoder:
    return OnnxDecoder(Session(open_session(path, threads=1), form, CPU_PROVIDER, ""), shape)


def _why(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def loaded_decoder(session: Session, record: Mapping[str, Any]) -> OnnxDecoder:
    return OnnxDecoder(session, record["cache_shape"])


def _decoding_step(model: Any) -> Any:
    import torch
    from transformers import DynamicCache

    class DecodingStep(torch.nn.Module):
        """The model with its cache as one tensor in and out."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, past: torch.Tensor):
            cache = DynamicCache()
            for layer in range(past.shape[0]):
                cache.update(past[layer, 0], past[layer, 1], layer)
            positions = torch.arange(input_ids.shape[1]).unsqueeze(0) + past.shape[4]
            output = self.model(
                input_ids=input_ids,
                cache=cache,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,  # only the next token's: a prompt's others cost as much again
            )
            grown = output.cache.layers
            present = torch.stack([torch.stack([layer.keys, layer.values]) for layer in grown])
            return output.logits[:, -1, :], present

    return DecodingStep().eval()


def _example(shape: Sequence[int], positions: int) -> dict[str, Any]:
    import torch

    layers, pair, heads, head_size = shape
    return {
        "input_ids": torch.tensor([list(EXAMPLE_PROMPT)]),
        "past": torch.zeros(layers, pair, 1, heads, positions, head_size),
    }


def _disagreement(model: Any, exported: OnnxDecoder) -> float:
    """The largest logit difference between ONNX Runtime and PyTorch over a prompt from an
    empty cache and one step after it."""
    import torch

    from assistant.generation.decoding import TorchDecoder

    reference = TorchDecoder(model, "cpu")
    with torch.inference_mode():
        ours, cache = exported.start(EXAMPLE_PROMPT)
        theirs, torch_cache = reference.start(EXAMPLE_PROMPT)
        first = float(np.abs(ours - theirs).max())
        ours, _ = exported.feed([int(theirs.argmax())], cache)
        theirs, _ = reference.feed([int(theirs.argmax())], torch_cache)
    return max(first, float(np.abs(ours - theirs).max()))

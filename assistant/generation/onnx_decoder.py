"""The answer generator's ONNX form: one decoding step with its key-value cache.

At training time the GPT-2 model is exported as one step: the new token ids and
the cache of every earlier position in, the next token's logits and the grown
cache out. The cache travels as one tensor, `(layers, 2, 1, heads, positions,
head size)`, so the graph has two inputs whatever the depth. The prompt is the
first step, with an empty cache. The export is checked against PyTorch on a
prompt and a step and saved with the version; serving then needs neither PyTorch
nor transformers. A model that cannot be exported is served by PyTorch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.onnx_forms import (
    AGREEMENT,
    FP32,
    Session,
    export,
    file_record,
    open_session,
    versions,
)

DECODER_FILE = "decoder.onnx"
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

    def step(self, token: int, state: Any) -> tuple[np.ndarray, Any]:
        return self._run([[token]], state)

    def _run(self, ids: list[list[int]], cache: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, present = self.session.run({"input_ids": ids, "past": cache})
        return logits[0], present


def cache_shape(config: Any) -> list[int]:
    """`(layers, 2, heads, head size)`: the cache tensor's fixed axes for a GPT-2 config."""
    return [config.n_layer, 2, config.n_head, config.n_embd // config.n_head]


def export_decoder(model: Any, folder: Path) -> dict[str, Any]:
    """Export `model` (a GPT-2 `transformers` model) to `folder` and check it against
    PyTorch: the record saved with the version. A failure leaves no file and a record of
    why."""
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
        disagreement = _disagreement(model, open_session(path, threads=1), shape)
        if disagreement > AGREEMENT:
            raise ValueError(f"the export differs from PyTorch by {disagreement:.2g}")
    except Exception as error:  # the exporter and ONNX Runtime raise many kinds
        path.unlink(missing_ok=True)
        why = f"{type(error).__name__}: {error}"[:500]
        log.warning("no ONNX decoder saved (%s): PyTorch will serve", why)
        return {"error": why}
    return {
        "files": {FP32: file_record(path)},
        "chosen": FP32,
        "cache_shape": shape,
        "disagreement": disagreement,
        "exported_with": versions(),
    }


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
                input_ids=input_ids, cache=cache, position_ids=positions, use_cache=True
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


def _disagreement(model: Any, session: Any, shape: Sequence[int]) -> float:
    """The largest logit difference between ONNX Runtime and PyTorch over a prompt from an
    empty cache and one step after it."""
    import torch

    from assistant.generation.decoding import TorchDecoder

    exported = OnnxDecoder(Session(session, FP32, "CPUExecutionProvider", ""), shape)
    reference = TorchDecoder(model, "cpu")
    with torch.inference_mode():
        ours, cache = exported.start(EXAMPLE_PROMPT)
        theirs, torch_cache = reference.start(EXAMPLE_PROMPT)
        first = float(np.abs(ours - theirs).max())
        ours, _ = exported.step(int(theirs.argmax()), cache)
        theirs, _ = reference.step(int(theirs.argmax()), torch_cache)
    return max(first, float(np.abs(ours - theirs).max()))

"""The sentence encoder in ONNX, served beside the index it built.

A sentence-transformers model made of a Transformer and mean pooling (and
optionally a Normalize step), such as MiniLM, is exported as its transformer
with the pooling; `OnnxSentenceEncoder` runs it with the model's own fast
tokenizer and answers `encode` as `SentenceTransformer.encode` does, for the
arguments the assistant uses. Its files and the gate's record live in the index
version (`meta.json`, "onnx_encoder"), because the index's vectors were made by
the chosen form: queries must be encoded the same way. The gate itself is in
`encoder_gate.py`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.errors import UnsupportedEncoder
from assistant.core.onnx_forms import Session, copy_forms, export, load_form
from assistant.core.padding import length_groups
from assistant.core.tokens import TokenizerFile

ONNX_STEM = "encoder"
RECORD_KEY = "onnx_encoder"
OUTPUT = "sentence_embedding"
EXAMPLE_TEXTS = ("where is my parcel", "hello, can you tell me how much delivery costs?")
BATCH = 64


def export_encoder(model: Any, path: Path) -> None:
    """Write a sentence-transformers model's ONNX form to `path` (its output: the mean of the
    token states; `encode` normalises)."""
    modules = list(model)
    kinds = [type(module).__name__ for module in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise UnsupportedEncoder(f"modules {kinds}; only Transformer, Pooling(, Normalize)")
    if modules[1].get_config_dict().get("pooling_mode") != "mean":
        raise UnsupportedEncoder("only mean pooling is exported")
    device = model.device
    model.to("cpu")
    try:
        example = model.tokenizer(list(EXAMPLE_TEXTS), padding=True, return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
        export(mean_pooled(modules[0].auto_model), {n: example[n] for n in names}, path, [OUTPUT])
    finally:
        model.to(device)


def mean_pooled(transformer: Any) -> Any:
    """The transformer and its mean pooling as one PyTorch module, for the export (PyTorch
    is imported here: serving the ONNX form needs none of it)."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            states = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    return MeanPooled()


class OnnxSentenceEncoder:
    """`SentenceTransformer.encode` and `get_embedding_dimension` on an ONNX session, shared
    by every thread."""

    def __init__(
        self,
        session: Session,
        tokenizer: Any,
        max_length: int,
        record: Mapping[str, Any] | None = None,
        folder: Path | None = None,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.record = record  # the gate's record, saved with every index this encoder builds
        self.folder = folder  # where the record's files are

    @property
    def runtime(self) -> str:
        return self.session.runtime

    @property
    def sha256(self) -> str:
        return self.session.sha256

    def get_embedding_dimension(self) -> int:
        return self.session.output_width(0)

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = BATCH,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
        **_: Any,
    ) -> np.ndarray:
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        vectors = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        for rows in length_groups(texts, batch_size):
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            vectors[rows] = self.session.run(encoded)[0]
        if normalize_embeddings:
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors[0] if isinstance(sentences, str) else vectors

    def write_onnx_files(self, folder: Path) -> Mapping[str, Any] | None:
        """Put this encoder's ONNX files in an index version being written to `folder`;
        returns the record that describes them, for the version's metadata."""
        if self.folder is not None and self.folder != folder:
            copy_forms(self.record, self.folder, folder)
        return self.record


def encoder_settings(model_path: str) -> tuple[TokenizerFile, int]:
    """The tokenizer and the token limit of a sentence-transformers model folder."""
    import json

    config = Path(model_path) / "sentence_bert_config.json"
    limit = 512
    if config.is_file():
        limit = int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", limit))
    return TokenizerFile.load(Path(model_path), limit), limit


def open_encoder(
    directory: Path,
    record: Mapping[str, Any] | None,
    model_path: str,
    device: str,
    runtime: str,
    hint: str,
) -> OnnxSentenceEncoder | None:
    """The ONNX form of the encoder saved with an index version, as `serving_form` picks it;
    None when PyTorch serves (no ONNX files, or told to)."""
    session = load_form(directory, record, device, runtime, hint)
    if session is None:
        return None
    tokenizer, limit = encoder_settings(model_path)
    return OnnxSentenceEncoder(session, tokenizer, limit, record, directory)


def fits(encoder: Any, record: Mapping[str, Any] | None, device: str, runtime: str) -> bool:
    """Whether an already loaded encoder encodes as the index with `record` expects, so it
    can be reused (a hot reload) instead of loading the version's own."""
    from assistant.core.onnx_forms import serving_form

    choice = serving_form(record, device, runtime)
    if choice is None:
        return not isinstance(encoder, OnnxSentenceEncoder)
    return (
        isinstance(encoder, OnnxSentenceEncoder)
        and encoder.sha256 == record["files"][choice[0]]["sha256"]
    )


def scratch_folder(encoder: OnnxSentenceEncoder | None, folder: Path) -> None:
    """Remove `folder` once nothing uses `encoder` any more."""
    import shutil

    if encoder is not None:
        weakref.finalize(encoder, shutil.rmtree, folder, True)

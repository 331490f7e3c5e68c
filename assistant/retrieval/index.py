"""Sentence embeddings and a FAISS index over historical questions.

Questions are embedded with sentence-transformers, L2-normalised, and put in an
inner-product index, so scores are cosine similarities: exact up to
`exact_index_max_rows` questions, approximate beyond (structure.py). The index
moves to the GPU when FAISS sees one (or when told to), and is always saved from
the CPU. Each saved index carries metadata that `load` checks, so an index built
from other data, with another model, of another structure than recorded, or
damaged on disk is refused, never misused. `extended` publishes a new version
from a loaded one plus new Q&A pairs, embedding only the new pairs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from assistant.core.base_models import model_unavailable, pick_device, resolve_model_path
from assistant.core.errors import ArtifactError, DataError, HardwareError, TrainingError
from assistant.core.files import file_sha256, read_json, write_json
from assistant.core.settings import Settings
from assistant.core.types import Source
from assistant.datasets.loading import QA_FILE, QAPair, checksum, load_qa_pairs
from assistant.lifecycle.versions import (
    base_data_checksum,
    new_version,
    publish_version,
    version_path,
)
from assistant.retrieval.onnx_encoder import (
    RECORD_KEY,
    OnnxSentenceEncoder,
    fits,
    open_encoder,
)
from assistant.retrieval.structure import (
    choose,
    create,
    gpu_available,
    mismatch,
    tune,
    wants_gpu,
)

if TYPE_CHECKING:  # imported where PyTorch encodes: an index served by ONNX never needs it
    from sentence_transformers import SentenceTransformer

__all__ = ["FaissRetriever", "gpu_available", "load_encoder", "load_index_version"]

INDEX_FILE = "index.faiss"
ROWS_FILE = "rows.jsonl"
META_FILE = "meta.json"
REBUILD_HINT = "Rebuild it with `assistant index` (or `python launch.py`)."
WHAT = "retrieval index"

log = logging.getLogger(__name__)


INDEX_RECIPE_FIELDS = {"embedding_model"}
# Metadata of one saved version only, not carried into a version extended from it.
UNSHARED_METADATA = {"version", "index_sha256", "rows_sha256", "extended_from"}
DATA_FILE_KEY = "qa_file_sha256"  # the dataset's Q&A file as it was when the index was built


def load_encoder(
    settings: Settings, directory: Path | None = None, metadata: dict[str, Any] | None = None
) -> SentenceTransformer | OnnxSentenceEncoder:
    """The sentence encoder; for an index version (`directory` and its `metadata`), the ONNX
    form saved with it when there is one (retrieval/onnx_encoder.py), else PyTorch's."""
    device = pick_device(settings.device)
    path = resolve_model_path(settings.embedding_model)
    if directory is not None:
        record = (metadata or {}).get(RECORD_KEY)
        runtime = settings.models.encoder_runtime
        onnx = open_encoder(directory, record, path, device, runtime, REBUILD_HINT)
        if onnx is not None:
            return onnx
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device=device)
    except OSError as error:
        raise ArtifactError(model_unavailable(settings.embedding_model, error)) from error


class FaissRetriever:
    def __init__(
        self,
        encoder: SentenceTransformer,
        index: faiss.Index,
        rows: list[QAPair],
        metadata: dict[str, Any],
        use_gpu: str = "auto",
    ) -> None:
        self.encoder = encoder
        self.rows = rows
        self.metadata = metadata
        self._cpu_index = index
        self._gpu_resources = None
        self.index = self._place(index, use_gpu)

    def _place(self, index: faiss.Index, use_gpu: str) -> faiss.Index:
        if use_gpu == "off" or (use_gpu == "auto" and not gpu_available()):
            return index
        if not gpu_available():
            raise HardwareError("faiss_gpu is 'on' but FAISS sees no GPU (install faiss-gpu)")
        try:
            self._gpu_resources = faiss.StandardGpuResources()
            return faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)
        except RuntimeError as error:  # e.g. HNSW has no GPU implementation
            log.warning("keeping the FAISS index on the CPU: %s", error)
            return index

    @property
    def on_gpu(self) -> bool:
        return self.index is not self._cpu_index

    @property
    def version(self) -> str:
        return str(self.metadata.get("version") or self.metadata["index_sha256"][:12])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.encoder.encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, texts: Sequence[str], k: int = 3) -> list[list[Source]]:
        """The `k` most similar historical questions for each text, best first."""
        if not texts:
            return []
        scores, ids = self.index.search(self.encode(texts), min(k, len(self.rows)))
        return [
            [
                Source(self.rows[i].question, self.rows[i].answer, self.rows[i].intent, float(s))
                for s, i in zip(row_scores, row_ids, strict=True)
                if i >= 0
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    @classmethod
    def build(
        cls,
        pairs: Sequence[QAPair],
        settings: Settings,
        encoder: SentenceTransformer | None = None,
        base_checksum: str | None = None,
    ) -> FaissRetriever:
        """Embed and index `pairs`; `base_checksum` is the dataset folder's part of them when
        they also hold answers from the conversation log."""
        if not pairs:
            raise TrainingError("cannot build a retrieval index from no Q&A pairs")
        encoder = encoder or load_encoder(settings)
        vectors = np.ascontiguousarray(
            encoder.encode(
                [pair.question for pair in pairs],
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=True,
            ),
            dtype=np.float32,
        )
        structure = choose(len(pairs), settings)
        index = create(structure, vectors, wants_gpu(settings))
        source_checksum = checksum(pairs)
        metadata = {
            "recipe": index_recipe(settings),
            "embedding_model": settings.embedding_model,
            "dimension": int(vectors.shape[1]),
            "structure": structure,
            "rows": len(pairs),
            "source_checksum": source_checksum,
            "base_checksum": base_checksum or source_checksum,
            "faiss_version": faiss.__version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        metadata[DATA_FILE_KEY] = data_file_fingerprint(settings, metadata["base_checksum"])
        return cls(encoder, tune(index, settings), list(pairs), metadata, settings.faiss_gpu)

    def extended(
        self, pairs: Sequence[QAPair], settings: Settings, base_checksum: str | None = None
    ) -> FaissRetriever:
        """A new, unpublished index: this one's rows plus `pairs`, only `pairs` embedded (with
        this index's encoder) and added to a copy of its CPU index, which keeps serving."""
        if not pairs:
            raise TrainingError("no new Q&A pairs to add to the retrieval index")
        index = faiss.clone_index(self._cpu_index)
        index.add(self.encode([pair.question for pair in pairs]))
        rows = [*self.rows, *pairs]
        source_checksum = checksum(rows)
        kept = {k: v for k, v in self.metadata.items() if k not in UNSHARED_METADATA}
        metadata = {
            **kept,
            "rows": len(rows),
            "source_checksum": source_checksum,
            "base_checksum": base_checksum or self.metadata.get("base_checksum", source_checksum),
            "extended_from": {"version": self.version, "rows": len(self.rows)},
            "faiss_version": faiss.__version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        metadata[DATA_FILE_KEY] = data_file_fingerprint(settings, metadata["base_checksum"])
        return type(self)(self.encoder, tune(index, settings), rows, metadata, settings.faiss_gpu)

    def publish(self, root: Path, make_current: bool = True) -> Path:
        """Save as a new version folder under `root`, the live one unless `make_current` is
        False; a process killed meanwhile leaves the previous version live."""
        self.metadata["version"] = new_version()
        return publish_version(root, self.metadata["version"], self._write, make_current)

    def _write(self, folder: Path) -> None:
        faiss.write_index(self._cpu_index, str(folder / INDEX_FILE))
        onnx_files = getattr(self.encoder, "write_onnx_files", None)
        if onnx_files is not None:  # the ONNX encoder that made the vectors goes with them
            self.metadata[RECORD_KEY] = onnx_files(folder)
        with (folder / ROWS_FILE).open("w", encoding="utf-8") as file:
            for row in self.rows:
                file.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
        self.metadata["index_sha256"] = file_sha256(folder / INDEX_FILE)
        self.metadata["rows_sha256"] = file_sha256(folder / ROWS_FILE)
        write_json(folder / META_FILE, self.metadata)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        version: str | None = None,
        previous: FaissRetriever | None = None,
    ) -> FaissRetriever:
        """The configured index at `version` (None: the live one), refused if it was built
        from other Q&A pairs than the dataset's; reuses `previous`'s encoder. The dataset's
        Q&A file is parsed only when its bytes are not those recorded at build."""
        directory = index_path(settings.qa_index_dir, version)  # resolved once: it can move
        expected = None
        if not data_file_unchanged(read_json(directory / META_FILE, REBUILD_HINT), settings):
            expected = checksum(load_qa_pairs(settings.data_dir / QA_FILE))
        encoder = previous.encoder if isinstance(previous, FaissRetriever) else None
        return cls.load(directory, settings, expected, encoder)

    @classmethod
    def load(
        cls,
        directory: Path,
        settings: Settings,
        expected_source_checksum: str | None = None,
        encoder: SentenceTransformer | None = None,
    ) -> FaissRetriever:
        """Load a saved index, refusing one that is corrupt or does not match the config."""
        metadata = read_json(directory / META_FILE, REBUILD_HINT)
        check_index_metadata(directory, metadata, settings, expected_source_checksum)
        try:
            index = faiss.read_index(str(directory / INDEX_FILE))
        except RuntimeError as error:
            raise ArtifactError(
                f"{directory / INDEX_FILE} cannot be read. {REBUILD_HINT}"
            ) from error
        different = mismatch(index, metadata)
        if different:
            raise ArtifactError(f"{directory}: {different}. {REBUILD_HINT}")
        rows = _read_rows(directory / ROWS_FILE)
        if index.ntotal != len(rows) or index.ntotal != metadata.get("rows"):
            raise ArtifactError(
                f"{directory}: index has {index.ntotal} vectors, {ROWS_FILE} {len(rows)} rows, "
                f"metadata says {metadata.get('rows')}. {REBUILD_HINT}"
            )
        device, runtime = pick_device(settings.device), settings.models.encoder_runtime
        if encoder is None or not fits(encoder, metadata.get(RECORD_KEY), device, runtime):
            encoder = load_encoder(settings, directory, metadata)
        dimension = encoder.get_embedding_dimension()
        if index.d != dimension or metadata.get("dimension") != dimension:
            raise ArtifactError(
                f"{directory}: index dimension {index.d} does not match the embedding model's "
                f"{dimension}. {REBUILD_HINT}"
            )
        return cls(encoder, tune(index, settings), rows, metadata, settings.faiss_gpu)


def data_file_fingerprint(settings: Settings, base_checksum: str) -> str | None:
    """The sha256 of the dataset's Q&A file when its pairs are those the index was built
    from (`base_checksum`), else None: a later load with the same bytes need not parse it."""
    path = settings.data_dir / QA_FILE
    if not path.is_file():
        return None
    try:
        parsed = checksum(load_qa_pairs(path))
    except DataError:
        return None
    return file_sha256(path) if parsed == base_checksum else None


def data_file_unchanged(metadata: dict[str, Any], settings: Settings) -> bool:
    """Whether the dataset's Q&A file holds the bytes recorded when the index was built."""
    path = settings.data_dir / QA_FILE
    recorded = metadata.get(DATA_FILE_KEY)
    return bool(recorded) and path.is_file() and file_sha256(path) == recorded


def index_recipe(settings: Settings) -> dict[str, Any]:
    """The settings an index is built from; a change to any of them means a rebuild."""
    return settings.model_dump(include=INDEX_RECIPE_FIELDS, mode="json")


def load_index_version(
    settings: Settings,
    version: str | None = None,
    expected_source_checksum: str | None = None,
    encoder: SentenceTransformer | None = None,
) -> FaissRetriever:
    """The configured index's live version (or `version`)."""
    directory = index_path(settings.qa_index_dir, version)
    return FaissRetriever.load(directory, settings, expected_source_checksum, encoder)


def check_index_metadata(
    directory: Path,
    metadata: dict[str, Any],
    settings: Settings,
    expected_source_checksum: str | None,
) -> None:
    """Cheap checks, before anything heavy loads: model, source data, file integrity."""
    if metadata.get("embedding_model") != settings.embedding_model:
        raise ArtifactError(
            f"{directory} was built with embedding model {metadata.get('embedding_model')!r}, "
            f"but the configuration says {settings.embedding_model!r}. {REBUILD_HINT}"
        )
    built_from = base_data_checksum(metadata, "source_checksum")
    if expected_source_checksum and built_from != expected_source_checksum:
        raise ArtifactError(
            f"{directory} was built from other Q&A data than the current dataset. {REBUILD_HINT}"
        )
    for name, key in ((INDEX_FILE, "index_sha256"), (ROWS_FILE, "rows_sha256")):
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing. {REBUILD_HINT}")
        if file_sha256(path) != metadata.get(key):
            raise ArtifactError(f"{path} is corrupt (checksum mismatch). {REBUILD_HINT}")


def index_path(root: Path, version: str | None = None) -> Path:
    """The folder of an index version under `root`, by default the live one."""
    return version_path(root, version, WHAT, REBUILD_HINT)


def _read_rows(path: Path) -> list[QAPair]:
    try:
        with path.open(encoding="utf-8") as file:
            return [QAPair(**json.loads(line)) for line in file if line.strip()]
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is corrupt ({error}). {REBUILD_HINT}") from error

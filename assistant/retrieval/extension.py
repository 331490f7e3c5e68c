"""Growing an index instead of rebuilding it, when the new Q&A pairs only add to the old.

Retraining adds the answers agents approved to the dataset's Q&A pairs. When the
previous index was built from the same dataset and embedding model and every row
it holds is still among the pairs, only the new pairs are embedded and added to
a copy of it (`FaissRetriever.extended`). Anything else means a full rebuild: a
row gone (an answer withdrawn or erased), other base data, another model, a
structure the settings no longer choose for the new size (an exact index grown
past `exact_index_max_rows`), or an encoder form that cannot be loaded as the one
that embedded the old rows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.core.errors import ArtifactError
from assistant.core.files import read_json
from assistant.core.settings import Settings
from assistant.datasets.loading import QAPair
from assistant.lifecycle.versions import base_data_checksum
from assistant.retrieval.index import (
    META_FILE,
    REBUILD_HINT,
    FaissRetriever,
    index_path,
)
from assistant.retrieval.onnx_encoder import RECORD_KEY, OnnxSentenceEncoder
from assistant.retrieval.structure import structure_staleness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extension:
    previous: FaissRetriever | None  # loaded as it was built; None: rebuild
    additions: list[QAPair]
    reason: str  # why it is extended or rebuilt, for the operator


def plan_extension(
    settings: Settings, version: str | None, pairs: Sequence[QAPair], base_checksum: str
) -> Extension:
    """Whether index `version` can be extended to hold `pairs` (the whole new set, old rows
    included), and with which of them. The previous index is loaded only once its cheap
    metadata allows it, and on the CPU with the encoder form that embedded its rows."""
    if version is None:
        return _rebuild("no previous index")
    try:
        directory = index_path(settings.qa_index_dir, version)
        metadata = read_json(directory / META_FILE, REBUILD_HINT)
    except ArtifactError as error:
        return _rebuild(f"the previous index cannot be read ({error})")
    if metadata.get("embedding_model") != settings.embedding_model:
        return _rebuild("the previous index was built with another embedding model")
    if base_data_checksum(metadata, "source_checksum") != base_checksum:
        return _rebuild("the previous index was built from other dataset Q&A pairs")
    why = structure_staleness(metadata, settings, rows=len(pairs))
    if why:
        return _rebuild(why)
    record = metadata.get(RECORD_KEY) or {}
    runtime = record.get("indexed_with") or "auto"
    as_built = settings.model_copy(
        update={"device": "cpu", "encoder_runtime": runtime, "faiss_gpu": "off"}
    )
    try:
        previous = FaissRetriever.load(directory, as_built)
    except ArtifactError as error:
        return _rebuild(f"the previous index cannot be loaded ({error})")
    gone = Counter(previous.rows) - Counter(pairs)
    if gone:
        return _rebuild(f"{sum(gone.values())} rows of the previous index are no longer there")
    if not _encodes_as_built(previous):
        return _rebuild("the encoder form that built the previous index cannot be loaded")
    left = Counter(previous.rows)
    additions = []
    for pair in pairs:
        if left[pair]:
            left[pair] -= 1
        else:
            additions.append(pair)
    return Extension(
        previous, additions, f"{len(additions)} new pairs added to {len(previous.rows)} rows"
    )


def _rebuild(why: str) -> Extension:
    return Extension(None, [], why)


def _encodes_as_built(retriever: FaissRetriever) -> bool:
    """Whether the loaded encoder is the ONNX form recorded as embedding the rows (or
    PyTorch when none was)."""
    record = retriever.metadata.get(RECORD_KEY) or {}
    chosen = record.get("indexed_with") or record.get("chosen")
    if not chosen or chosen not in record.get("files", {}):
        return not isinstance(retriever.encoder, OnnxSentenceEncoder)
    return (
        isinstance(retriever.encoder, OnnxSentenceEncoder)
        and retriever.encoder.sha256 == record["files"][chosen]["sha256"]
    )

"""Which FAISS index holds the past questions, chosen by how many there are.

Up to `exact_index_max_rows` vectors an exact inner-product index (`IndexFlatIP`)
is searched in full: a single query costs about 0.1 ms per 1,000 rows on two
cores, so it stays under 2 ms to about 20,000 rows. Beyond that an approximate
index: HNSW (`IndexHNSWFlat`, a graph of `hnsw_m` links a vector, searched with
`hnsw_ef_search` candidates) on the CPU, or IVF-Flat (`ivf_nprobe` of about
4 x sqrt(rows) lists searched) when the index is to go on a GPU, as FAISS has no
GPU HNSW. Either keeps the vectors themselves, so scores stay exact cosines of
the rows found and new rows are added without rebuilding.

What was built is described by a small dict saved in the index metadata
(`structure`): its type and build parameters. It is read back from the index
file and compared on load, so a file that is not what its metadata says is
refused. Search parameters (`hnsw_ef_search`, `ivf_nprobe`) are not part of it:
they are applied from the settings each time an index is loaded.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import faiss
import numpy as np

from assistant.core.settings import Settings

FLAT, HNSW, IVF = "flat", "hnsw", "ivf"
METRIC = "inner_product"
IVF_POINTS_PER_LIST = 39  # FAISS's least training points per list before it warns
IVF_TRAINING_PER_LIST = 64  # training sample per list (FAISS's k-means default cap is 256)
TRAINING_SEED = 13

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def wants_gpu(settings: Settings) -> bool:
    """Whether the index is meant for the GPU (`faiss_gpu` on, or auto with one present)."""
    return settings.faiss_gpu == "on" or (settings.faiss_gpu == "auto" and gpu_available())


def ivf_lists(rows: int) -> int:
    """IVF lists for `rows` vectors: about 4 x sqrt(rows), with enough rows to train each."""
    return max(1, min(round(4 * math.sqrt(rows)), rows // IVF_POINTS_PER_LIST))


def choose(rows: int, settings: Settings, gpu: bool | None = None) -> dict[str, Any]:
    """The structure for an index of `rows` vectors; `gpu` (default: `wants_gpu`) decides
    between HNSW and IVF when `approximate_index` is "auto"."""
    if rows <= settings.exact_index_max_rows:
        return {"type": FLAT, "metric": METRIC}
    kind = settings.approximate_index
    if kind == "auto":
        kind = IVF if (wants_gpu(settings) if gpu is None else gpu) else HNSW
    if kind == HNSW:
        return {
            "type": HNSW,
            "metric": METRIC,
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
        }
    return {"type": IVF, "metric": METRIC, "lists": ivf_lists(rows)}


def create(structure: dict[str, Any], vectors: np.ndarray, gpu: bool = False) -> faiss.Index:
    """A CPU index of `structure` holding `vectors` (unit length, float32); an IVF index is
    trained on a sample of them, on the GPU when `gpu` and FAISS can."""
    dimension = vectors.shape[1]
    kind = structure["type"]
    if kind == FLAT:
        index = faiss.IndexFlatIP(dimension)
    elif kind == HNSW:
        index = faiss.IndexHNSWFlat(dimension, structure["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = structure["ef_construction"]
    elif kind == IVF:
        return _create_ivf(structure["lists"], vectors, gpu)
    else:
        raise ValueError(f"unknown index structure {kind!r}")
    index.add(vectors)
    return index


def _create_ivf(lists: int, vectors: np.ndarray, gpu: bool) -> faiss.Index:
    index = faiss.index_factory(vectors.shape[1], f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
    sample = vectors
    if len(vectors) > lists * IVF_TRAINING_PER_LIST:
        chosen = np.random.default_rng(TRAINING_SEED).choice(
            len(vectors), lists * IVF_TRAINING_PER_LIST, replace=False
        )
        sample = vectors[np.sort(chosen)]
    if gpu and gpu_available():
        try:
            resources = faiss.StandardGpuResources()
            on_gpu = faiss.index_cpu_to_gpu(resources, 0, index)
            on_gpu.train(sample)
            on_gpu.add(vectors)
            return faiss.index_gpu_to_cpu(on_gpu)
        except RuntimeError as error:
            log.warning("building the IVF index on the CPU: %s", error)
    index.train(sample)
    index.add(vectors)
    return index


def describe(index: faiss.Index) -> dict[str, Any]:
    """The structure of a loaded CPU index, read from the index itself."""
    index = faiss.downcast_index(index)
    metric = METRIC if index.metric_type == faiss.METRIC_INNER_PRODUCT else "other"
    if isinstance(index, faiss.IndexHNSWFlat):
        return {
            "type": HNSW,
            "metric": metric,
            "m": int(index.hnsw.nb_neighbors(1)),
            "ef_construction": int(index.hnsw.efConstruction),
        }
    if isinstance(index, faiss.IndexIVFFlat):
        return {"type": IVF, "metric": metric, "lists": int(index.nlist)}
    if isinstance(index, faiss.IndexFlat):
        return {"type": FLAT, "metric": metric}
    return {"type": type(index).__name__, "metric": metric}


def recorded(metadata: dict[str, Any]) -> dict[str, Any]:
    """The structure an index's metadata records; indexes saved before it was recorded
    were all exact."""
    return metadata.get("structure") or {"type": FLAT, "metric": METRIC}


def label(structure: dict[str, Any]) -> str:
    """A structure in words: "exact", "HNSW (m=32, ef_construction=40)", "IVF-Flat (400
    lists)"."""
    kind = structure.get("type")
    if kind == FLAT:
        return "exact"
    if kind == HNSW:
        return f"HNSW (m={structure.get('m')}, ef_construction={structure.get('ef_construction')})"
    if kind == IVF:
        return f"IVF-Flat ({structure.get('lists')} lists)"
    return str(kind)


def mismatch(index: faiss.Index, metadata: dict[str, Any]) -> str | None:
    """How the index file differs from the structure its metadata records, or None."""
    expected, found = recorded(metadata), describe(index)
    if expected == found:
        return None
    return f"its metadata records an {label(expected)} index, the file holds {label(found)}"


def structure_staleness(
    metadata: dict[str, Any], settings: Settings, rows: int | None = None
) -> str | None:
    """Why an index with this metadata (grown to `rows`, default its own row count) does
    not have the structure the settings choose for its size, or None. With
    `approximate_index` "auto" an HNSW and an IVF index both serve (one built for a GPU
    is still searched on a CPU), and an IVF index's lists may be half to twice the ideal
    count, so a growing index is not rebuilt for every few rows."""
    have = recorded(metadata)
    rows = int(metadata.get("rows", 0)) if rows is None else rows
    want = choose(rows, settings)
    approximate = (HNSW, IVF)
    if settings.approximate_index == "auto" and {have["type"], want["type"]} <= set(approximate):
        want = choose(rows, settings, gpu=have["type"] == IVF)
    close_enough = have["type"] == want["type"] == IVF and (
        want["lists"] / 2 <= have.get("lists", 0) <= want["lists"] * 2
    )
    if close_enough or have == want:
        return None
    return f"the settings choose an {label(want)} index for {rows} rows, not {label(have)}"


def tune(index: faiss.Index, settings: Settings) -> faiss.Index:
    """Apply the search settings (HNSW's candidates, IVF's lists probed) to a CPU index,
    before it is placed on a GPU; returns it."""
    typed = faiss.downcast_index(index)
    if isinstance(typed, faiss.IndexHNSW):
        typed.hnsw.efSearch = settings.hnsw_ef_search
    elif isinstance(typed, faiss.IndexIVF):
        typed.nprobe = min(settings.ivf_nprobe, typed.nlist)
    return index

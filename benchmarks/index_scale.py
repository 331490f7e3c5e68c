"""The retrieval index at a million past questions: latency, recall, build time, memory.

    python benchmarks/index_scale.py [--rows 1000000] [--queries 1000] [--also-ivf]
        [--real-limit N]

Real questions (the demo Q&A pairs' and the Bitext sample's, without the held-out
ones) are embedded with the configured sentence encoder. Filler brings the index
to `--rows` vectors: each mixes one real question's embedding, half of another
real question's (centred) and isotropic noise, then is normalised, so it lies in
the same region of the space as real questions but is a paraphrase of none (the
share of filler vectors within `retrieval_threshold` of their nearest real
question is reported, and should be near zero). Queries are real messages that
are not in the index: the demo validation split and held-out Bitext questions (the
search parameters are chosen from this run, so no test split is used).

The index is built as the assistant builds it (`retrieval/structure.py`: the
structure `choose` picks for the row count with the default settings, HNSW on a
CPU), then measured: single-query p50/p95 (one query a call, as a lone customer
sends it), batched queries/s (64 a call, as the micro-batcher sends them),
recall@10 against exact search, build time, the index's size, the process's
resident memory, and adding 1,000 rows to the built index (what retraining does
instead of a rebuild), and the same figures at each value of its search parameter
(`--also-ivf`: IVF's nprobe; HNSW's ef_search), from which the configured value is
chosen. The exact index over the same rows is timed beside it.
`--also-ivf` measures IVF-Flat too (the structure chosen when the index is meant
for a GPU), here on the CPU. Writes benchmarks/results/index_scale.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BITEXT = ROOT.parent / "shared" / "datasets" / "bitext_customer_support" / "train.csv"
sys.path.insert(0, str(ROOT))
from assistant.core.base_models import limit_model_threads  # noqa: E402
from assistant.core.settings import Settings  # noqa: E402
from assistant.datasets.corpus import dataset_splits  # noqa: E402
from assistant.datasets.loading import load_dataset  # noqa: E402
from assistant.retrieval.index import load_encoder  # noqa: E402
from assistant.retrieval.structure import choose, create, label, tune  # noqa: E402
from benchmarks.run_facts import run_facts  # noqa: E402

SEED = 13
K = 10
BATCH = 64
SINGLE_QUERIES = 500
ADDED_ROWS = 1_000
CHUNK = 50_000
HNSW_EF_SEARCH_SWEEP = (64, 96, 128, 160, 192, 256)
IVF_NPROBE_SWEEP = (8, 16, 32, 64)
SWEEP_SINGLE_QUERIES = 200
NOISE = 0.035  # per dimension: a filler vector's cosine to its real parent is about 0.7


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def real_questions(settings: Settings, held_out: int) -> tuple[list[str], list[str]]:
    """Questions to index (demo Q&A and Bitext) and queries that are not among them (the
    demo validation split and `held_out` Bitext questions)."""
    dataset = load_dataset(settings.data_dir)
    demo = sorted({pair.question for pair in dataset.qa_pairs})
    demo_held_out = [example.text for example in dataset_splits(dataset, settings).validation]
    with BITEXT.open(encoding="utf-8", newline="") as handle:
        bitext = sorted({row["instruction"].strip() for row in csv.DictReader(handle)} - {""})
    random.Random(SEED).shuffle(bitext)
    indexed = set(demo)
    queries = [text for text in demo_held_out if text not in indexed]
    queries += bitext[: max(0, held_out - len(queries))]
    return demo + bitext[held_out:], queries


def embed(encoder: Any, texts: list[str]) -> np.ndarray:
    vectors = encoder.encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=True,
    )  # fmt: skip
    return np.ascontiguousarray(vectors, dtype=np.float32)


def with_filler(real: np.ndarray, rows: int) -> np.ndarray:
    """`real` then filler vectors up to `rows` in all (see the module's docstring)."""
    rng = np.random.default_rng(SEED)
    vectors = np.empty((rows, real.shape[1]), dtype=np.float32)
    vectors[: len(real)] = real
    centre = real.mean(axis=0)
    for start in range(len(real), rows, CHUNK):
        count = min(CHUNK, rows - start)
        parents = real[rng.integers(len(real), size=count)]
        others = real[rng.integers(len(real), size=count)] - centre
        noise = rng.standard_normal(parents.shape, dtype=np.float32) * NOISE
        chunk = parents + 0.5 * others + noise
        vectors[start : start + count] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def filler_nearest_real(vectors: np.ndarray, real_rows: int, threshold: float) -> dict:
    """How close a sample of filler vectors comes to its nearest real question."""
    sample = vectors[real_rows:][np.random.default_rng(SEED).choice(
        len(vectors) - real_rows, size=2_000, replace=False)]  # fmt: skip
    nearest = (sample @ vectors[:real_rows].T).max(axis=1)
    return {
        "median_cosine": round(float(np.median(nearest)), 3),
        "p99_cosine": round(float(np.percentile(nearest, 99)), 3),
        "share_within_retrieval_threshold": round(float((nearest >= threshold).mean()), 4),
        "retrieval_threshold": threshold,
    }


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, float]:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, ids = index.search(queries, K)
    timings = time_single(index, queries[:50])
    del index
    return ids, timings


def time_single(index: faiss.Index, queries: np.ndarray) -> dict[str, float]:
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], K)
        timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(float(np.percentile(timings, 50)), 3),
        "p95_ms": round(float(np.percentile(timings, 95)), 3),
    }


def time_batched(index: faiss.Index, queries: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), BATCH):
        index.search(queries[start : start + BATCH], K)
    return round(len(queries) / (time.perf_counter() - started), 1)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(f) & set(e)) for f, e in zip(found.tolist(), exact.tolist(), strict=True)]
    return round(sum(hits) / exact.size, 4)


def index_megabytes(index: faiss.Index) -> float:
    with tempfile.NamedTemporaryFile(suffix=".faiss") as file:
        faiss.write_index(index, file.name)
        return round(os.path.getsize(file.name) / 2**20, 1)


def measure(
    structure: dict[str, Any],
    settings: Settings,
    vectors: np.ndarray,
    queries: np.ndarray,
    exact: np.ndarray,
) -> dict[str, Any]:
    print(f"Building {label(structure)} over {len(vectors):,} rows...", flush=True)
    before = rss_mb()
    started = time.perf_counter()
    index = tune(create(structure, vectors), settings)
    build_s = time.perf_counter() - started
    grown_mb = rss_mb() - before
    sweep = sweep_search_parameter(index, queries, exact)
    tune(index, settings)  # back to the configured search parameter
    _, found = index.search(queries, K)
    single = time_single(index, queries[:SINGLE_QUERIES])
    added = np.ascontiguousarray(vectors[:ADDED_ROWS] + 0.0)  # re-added copies: same cost
    started = time.perf_counter()
    index.add(added)
    add_s = time.perf_counter() - started
    result = {
        "structure": structure,
        "label": label(structure),
        "search_parameters": search_parameters(index),
        "build_s": round(build_s, 1),
        "single_query": single,
        "batched_queries_per_s": time_batched(index, queries),
        "recall_at_10": recall_at_k(found, exact),
        "index_file_mb": index_megabytes(index),
        "process_growth_mb": round(grown_mb, 1),
        "process_rss_mb": round(rss_mb(), 1),
        f"add_{ADDED_ROWS}_rows_s": round(add_s, 2),
        "sweep": sweep,
    }
    del index
    return result


def sweep_search_parameter(
    index: faiss.Index, queries: np.ndarray, exact: np.ndarray
) -> list[dict[str, Any]]:
    """Recall@10 and latency at each value of the index's search parameter (HNSW's
    ef_search, IVF's nprobe): the trade-off the configured value is chosen from."""
    typed = faiss.downcast_index(index)
    if isinstance(typed, faiss.IndexHNSW):
        name, values = "ef_search", HNSW_EF_SEARCH_SWEEP
    elif isinstance(typed, faiss.IndexIVF):
        name, values = "nprobe", IVF_NPROBE_SWEEP
    else:
        return []
    points = []
    for value in values:
        if name == "ef_search":
            typed.hnsw.efSearch = value
        else:
            typed.nprobe = value
        _, found = index.search(queries, K)
        points.append({
            name: value,
            "recall_at_10": recall_at_k(found, exact),
            **time_single(index, queries[:SWEEP_SINGLE_QUERIES]),
            "batched_queries_per_s": time_batched(index, queries),
        })  # fmt: skip
        print(f"  {name}={value}: {points[-1]}", flush=True)
    return points


def search_parameters(index: faiss.Index) -> dict[str, int]:
    typed = faiss.downcast_index(index)
    if isinstance(typed, faiss.IndexHNSW):
        return {"ef_search": int(typed.hnsw.efSearch)}
    if isinstance(typed, faiss.IndexIVF):
        return {"nprobe": int(typed.nprobe)}
    return {}


def print_table(result: dict[str, Any]) -> None:
    rows = result["rows"]
    print(f"\n{rows:,} rows ({result['real_rows']:,} real), {result['queries']} queries, "
          f"{result['threads']} threads")  # fmt: skip
    header = "| index | build | p50 | p95 | batched q/s | recall@10 | file | RSS | add 1k |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    exact = result["exact"]
    print(
        f"| exact (flat) | - | {exact['p50_ms']} ms | {exact['p95_ms']} ms | - | 1.0 | - | - | - |"
    )
    for entry in result["indexes"]:
        single = entry["single_query"]
        print(
            f"| {entry['label']} {entry['search_parameters']} | {entry['build_s']} s "
            f"| {single['p50_ms']} ms | {single['p95_ms']} ms | {entry['batched_queries_per_s']} "
            f"| {entry['recall_at_10']} | {entry['index_file_mb']} MB "
            f"| {entry['process_rss_mb']} MB | {entry[f'add_{ADDED_ROWS}_rows_s']} s |"
        )
    for entry in result["indexes"]:
        for point in entry["sweep"]:
            print(f"  {entry['label']}: {point}")
    print(f"filler against real questions: {result['filler']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--real-limit", type=int, default=None, help="real questions at most")
    parser.add_argument("--also-ivf", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS / "index_scale.json")
    args = parser.parse_args()
    settings = Settings()
    threads = limit_model_threads(settings.model_threads)
    texts, query_texts = real_questions(settings, args.queries)
    texts = texts[: args.real_limit]
    print(f"Embedding {len(texts):,} real questions and {len(query_texts)} queries...")
    encoder = load_encoder(settings)
    real, queries = embed(encoder, texts), embed(encoder, query_texts)
    del encoder
    vectors = with_filler(real, args.rows)
    print("Exact neighbours of the queries...", flush=True)
    exact_ids, exact_timing = exact_neighbours(vectors, queries)
    structures = [choose(args.rows, settings)]
    if args.also_ivf:
        structures.append(choose(args.rows, settings.model_copy(
            update={"approximate_index": "ivf"})))  # fmt: skip
    result = {
        **run_facts(),
        "rows": args.rows,
        "real_rows": len(real),
        "queries": len(queries),
        "threads": threads,
        "dimension": int(vectors.shape[1]),
        "vectors_mb": round(vectors.nbytes / 2**20, 1),
        "filler": filler_nearest_real(vectors, len(real), settings.retrieval_threshold),
        "exact": exact_timing,
        "indexes": [measure(s, settings, vectors, queries, exact_ids) for s in structures],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    main()

import faiss
import numpy as np
import pytest

from assistant.core.settings import Settings
from assistant.retrieval.structure import (
    FLAT,
    HNSW,
    IVF,
    IVF_POINTS_PER_LIST,
    METRIC,
    choose,
    create,
    describe,
    ivf_lists,
    mismatch,
    structure_staleness,
    tune,
)

ROWS, DIMENSION, QUERIES, K = 2000, 32, 100, 10
LIMIT = 100  # exact_index_max_rows in most tests here


def settings(**overrides: object) -> Settings:
    return Settings(**{"exact_index_max_rows": LIMIT, "faiss_gpu": "off", **overrides})


def unit_vectors(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIMENSION)).astype(np.float32)
    return np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit_vectors(ROWS, seed=1)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return unit_vectors(QUERIES, seed=2)


def exact_top(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :K]


def recall(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray) -> float:
    _, found = index.search(queries, K)
    truth = exact_top(vectors, queries)
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


# choose


def test_up_to_the_limit_the_index_is_exact():
    for rows in (0, 1, LIMIT - 1, LIMIT):
        assert choose(rows, settings()) == {"type": FLAT, "metric": METRIC}
    assert choose(1, settings(exact_index_max_rows=0))["type"] != FLAT


def test_above_the_limit_hnsw_carries_its_build_parameters():
    chosen = choose(
        LIMIT + 1, settings(approximate_index="hnsw", hnsw_m=16, hnsw_ef_construction=64)
    )
    assert chosen == {"type": HNSW, "metric": METRIC, "m": 16, "ef_construction": 64}


def test_above_the_limit_ivf_carries_its_list_count():
    rows = 10_000
    chosen = choose(rows, settings(approximate_index="ivf"))
    assert chosen == {"type": IVF, "metric": METRIC, "lists": ivf_lists(rows)}


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_an_explicit_kind_ignores_the_gpu(kind):
    for gpu in (True, False):
        assert choose(LIMIT + 1, settings(approximate_index=kind), gpu=gpu)["type"] == kind


def test_auto_is_ivf_for_a_gpu_and_hnsw_for_a_cpu():
    auto = settings(approximate_index="auto")
    assert choose(LIMIT + 1, auto, gpu=True)["type"] == IVF
    assert choose(LIMIT + 1, auto, gpu=False)["type"] == HNSW
    # Without `gpu`, the faiss_gpu setting decides ("on" means the index is meant for a GPU).
    assert choose(LIMIT + 1, settings(faiss_gpu="on"))["type"] == IVF
    assert choose(LIMIT + 1, settings(faiss_gpu="off"))["type"] == HNSW


# ivf_lists


def test_ivf_lists_are_about_four_root_rows_and_each_has_enough_rows_to_train():
    assert ivf_lists(0) == ivf_lists(1) == ivf_lists(IVF_POINTS_PER_LIST) == 1
    assert ivf_lists(10_000) == 10_000 // IVF_POINTS_PER_LIST  # 256, not 400
    assert ivf_lists(1_000_000) == 4000  # 4 x sqrt(rows), well under rows / 39
    for rows in [*range(0, 5000, 37), 65_536, 250_000, 4_000_000]:
        lists = ivf_lists(rows)
        assert 1 <= lists <= max(1, rows // IVF_POINTS_PER_LIST)
        assert lists <= max(1, round(4 * np.sqrt(rows)))


# create, describe, tune


def test_an_exact_index_finds_the_exact_neighbours(vectors, queries):
    structure = choose(ROWS, settings(exact_index_max_rows=ROWS))
    index = create(structure, vectors)
    assert describe(index) == structure
    assert index.ntotal == ROWS
    _, found = index.search(queries, K)
    np.testing.assert_array_equal(found, exact_top(vectors, queries))


def test_an_hnsw_index_has_high_recall_and_takes_ef_search_from_the_settings(vectors, queries):
    chosen = settings(approximate_index="hnsw", hnsw_ef_search=77)
    structure = choose(ROWS, chosen)
    index = create(structure, vectors)
    assert describe(index) == structure
    assert index.ntotal == ROWS
    assert tune(index, chosen) is index
    assert faiss.downcast_index(index).hnsw.efSearch == 77
    assert recall(index, vectors, queries) >= 0.95


def test_an_ivf_index_probing_every_list_is_exact(vectors, queries):
    chosen = settings(approximate_index="ivf", ivf_nprobe=10_000)
    structure = choose(ROWS, chosen)
    index = create(structure, vectors)
    assert describe(index) == structure
    assert index.ntotal == ROWS
    lists = structure["lists"]
    assert tune(index, chosen) is index
    assert faiss.downcast_index(index).nprobe == lists  # capped at the list count
    _, found = index.search(queries, K)
    np.testing.assert_array_equal(np.sort(found), np.sort(exact_top(vectors, queries)))
    tune(index, settings(ivf_nprobe=3))
    assert faiss.downcast_index(index).nprobe == 3
    assert recall(index, vectors, queries) < 1.0  # 3 of 51 lists: approximate, so tune took


def test_an_ivf_index_trained_on_a_sample_holds_every_row(vectors, queries):
    structure = {"type": IVF, "metric": METRIC, "lists": 4}  # 2,000 rows > 4 x 64: a sample
    index = create(structure, vectors, gpu=True)  # falls back to the CPU without a GPU
    assert describe(index) == structure
    assert index.ntotal == ROWS
    tune(index, settings(ivf_nprobe=4))
    assert recall(index, vectors, queries) == 1.0


def test_an_unknown_structure_is_refused(vectors):
    with pytest.raises(ValueError, match="unknown index structure"):
        create({"type": "pq", "metric": METRIC}, vectors)


def test_tune_leaves_an_exact_index_alone(vectors):
    index = create({"type": FLAT, "metric": METRIC}, vectors[:10])
    assert tune(index, settings()) is index
    assert describe(index) == {"type": FLAT, "metric": METRIC}


def test_describe_tells_an_l2_index_from_an_inner_product_one():
    assert describe(faiss.IndexFlatL2(DIMENSION)) == {"type": FLAT, "metric": "other"}


# mismatch


def test_a_flat_file_recorded_as_hnsw_is_a_mismatch(vectors):
    flat = create({"type": FLAT, "metric": METRIC}, vectors[:50])
    recorded_hnsw = {"structure": choose(LIMIT + 1, settings(approximate_index="hnsw"))}
    problem = mismatch(flat, recorded_hnsw)
    assert problem is not None and "HNSW" in problem and "exact" in problem
    assert mismatch(flat, {"structure": {"type": FLAT, "metric": METRIC}}) is None
    assert mismatch(flat, {}) is None  # saved before structures were recorded: exact


def test_other_build_parameters_are_a_mismatch(vectors):
    hnsw = create({"type": HNSW, "metric": METRIC, "m": 16, "ef_construction": 40}, vectors)
    assert mismatch(hnsw, {"structure": describe(hnsw)}) is None
    other_m = {"type": HNSW, "metric": METRIC, "m": 32, "ef_construction": 40}
    assert "m=32" in mismatch(hnsw, {"structure": other_m})
    assert mismatch(hnsw, {}) is not None  # an HNSW file with no record is not exact
    ivf = create({"type": IVF, "metric": METRIC, "lists": 8}, vectors)
    assert "8 lists" in mismatch(ivf, {"structure": {"type": IVF, "metric": METRIC, "lists": 9}})


# structure_staleness


def test_an_exact_index_grown_past_the_limit_is_stale():
    metadata = {"structure": {"type": FLAT, "metric": METRIC}, "rows": LIMIT}
    assert structure_staleness(metadata, settings()) is None
    assert structure_staleness({"rows": LIMIT}, settings()) is None  # no record: exact
    grown = structure_staleness(metadata, settings(approximate_index="hnsw"), rows=LIMIT + 1)
    assert grown is not None and "HNSW" in grown and str(LIMIT + 1) in grown
    assert structure_staleness({**metadata, "rows": LIMIT + 1}, settings()) is not None


def test_an_approximate_index_shrunk_to_the_limit_is_stale():
    metadata = {"structure": choose(LIMIT + 1, settings()), "rows": LIMIT + 1}
    assert structure_staleness(metadata, settings()) is None
    assert "exact" in structure_staleness(metadata, settings(), rows=LIMIT)


def test_ivf_lists_within_half_to_twice_the_ideal_are_not_stale():
    rows, ivf = 10_000, settings(approximate_index="ivf")
    ideal = ivf_lists(rows)

    def stale(lists: int) -> bool:
        metadata = {"structure": {"type": IVF, "metric": METRIC, "lists": lists}, "rows": rows}
        return structure_staleness(metadata, ivf) is not None

    assert [stale(n) for n in (ideal // 2, ideal, ideal * 2)] == [False] * 3
    assert stale(ideal // 2 - 1) and stale(ideal * 2 + 1)


def test_auto_accepts_hnsw_for_ivf_and_ivf_for_hnsw():
    rows = 10_000
    hnsw = {"structure": choose(rows, settings(approximate_index="hnsw")), "rows": rows}
    ivf = {"structure": choose(rows, settings(approximate_index="ivf")), "rows": rows}
    for gpu in ("on", "off"):
        auto = settings(approximate_index="auto", faiss_gpu=gpu)
        assert structure_staleness(hnsw, auto) is None
        assert structure_staleness(ivf, auto) is None
        far_off = {**ivf, "structure": {**ivf["structure"], "lists": 3}}
        assert structure_staleness(far_off, auto) is not None
        other_m = {**hnsw, "structure": {**hnsw["structure"], "m": 8}}
        assert structure_staleness(other_m, auto) is not None


def test_an_explicit_kind_makes_the_other_kind_stale():
    rows = 10_000
    hnsw = {"structure": choose(rows, settings(approximate_index="hnsw")), "rows": rows}
    ivf = {"structure": choose(rows, settings(approximate_index="ivf")), "rows": rows}
    assert "IVF" in structure_staleness(hnsw, settings(approximate_index="ivf"))
    assert "HNSW" in structure_staleness(ivf, settings(approximate_index="hnsw"))

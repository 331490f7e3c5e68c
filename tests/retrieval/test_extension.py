import json

import faiss
import numpy as np
import pytest

from assistant.core.errors import ArtifactError, TrainingError
from assistant.datasets.loading import checksum, load_dataset, qa_checksum
from assistant.retrieval.extension import plan_extension
from assistant.retrieval.index import (
    META_FILE,
    FaissRetriever,
    index_path,
    load_index_version,
)
from assistant.retrieval.structure import FLAT, HNSW, IVF, choose, describe

OLD = 50  # rows of the index that is extended; the slice has 70 Q&A pairs


@pytest.fixture(scope="module")
def live(built_settings):
    return load_index_version(built_settings)


@pytest.fixture(scope="module")
def base(built_settings):
    return qa_checksum(load_dataset(built_settings.data_dir))


@pytest.fixture
def own(built_settings, tmp_path):
    """The session's settings with an empty index folder of this test's own."""
    return built_settings.model_copy(update={"index_dir": tmp_path / "index"})


def published(settings, pairs, live, base) -> str:
    """The version of an index of `pairs`, built with the session's encoder and published."""
    retriever = FaissRetriever.build(pairs, settings, live.encoder, base)
    retriever.publish(settings.qa_index_dir)
    return retriever.version


def loaded(settings, version, live) -> FaissRetriever:
    return FaissRetriever.load(
        index_path(settings.qa_index_dir, version), settings, None, live.encoder
    )


def assert_finds_its_own_questions(retriever, pairs):
    [*found] = retriever.search([pair.question for pair in pairs], k=1)
    assert [hits[0].question for hits in found] == [pair.question for pair in pairs]
    assert all(hits[0].score == pytest.approx(1.0, abs=1e-3) for hits in found)


def test_extended_embeds_only_the_new_pairs_and_keeps_the_old_rows(own, live, base, monkeypatch):
    pairs = live.rows
    assert len(pairs) > OLD + 5
    version = published(own, pairs[:OLD], live, base)
    old = loaded(own, version, live)
    embedded = []
    encode = old.encode

    def recording(texts):
        embedded.extend(texts)
        return encode(texts)

    monkeypatch.setattr(old, "encode", recording)
    grown = old.extended(pairs[OLD:], own, base)
    assert embedded == [pair.question for pair in pairs[OLD:]]
    assert grown.rows == list(pairs)
    assert old.rows == pairs[:OLD] and old.index.ntotal == OLD  # the old one keeps serving
    assert grown.index.ntotal == len(pairs)
    np.testing.assert_array_equal(
        grown._cpu_index.reconstruct_n(0, OLD), old._cpu_index.reconstruct_n(0, OLD)
    )
    assert_finds_its_own_questions(grown, pairs[OLD:])
    meta = grown.metadata
    assert meta["extended_from"] == {"version": version, "rows": OLD}
    assert not {"version", "index_sha256", "rows_sha256"} & set(meta)
    assert meta["rows"] == len(pairs)
    assert meta["source_checksum"] == checksum(pairs)
    assert meta["base_checksum"] == base
    assert (
        meta["structure"] == old.metadata["structure"] == {"type": FLAT, "metric": "inner_product"}
    )


def test_an_extended_index_is_published_and_extended_again(own, live, base):
    pairs = live.rows
    first = published(own, pairs[:OLD], live, base)
    grown = loaded(own, first, live).extended(pairs[OLD:-1], own, base)
    folder = grown.publish(own.qa_index_dir)
    saved = json.loads((folder / META_FILE).read_text())
    assert saved["version"] == grown.version != first
    assert saved["extended_from"] == {"version": first, "rows": OLD}
    again = load_index_version(own, encoder=live.encoder)
    assert again.version == grown.version and again.rows == pairs[:-1]
    assert_finds_its_own_questions(again, pairs[OLD:-1])
    third = again.extended(pairs[-1:], own, base)
    assert third.metadata["extended_from"] == {"version": grown.version, "rows": len(pairs) - 1}
    with pytest.raises(TrainingError, match="no new Q&A pairs"):
        again.extended([], own, base)


def test_a_superset_of_the_previous_rows_is_planned_as_additions(own, live, base):
    pairs = live.rows
    version = published(own, pairs[:OLD], live, base)
    superset = [*reversed(pairs), pairs[0]]  # any order; a second copy of a row is a new row
    plan = plan_extension(own, version, superset, base)
    assert plan.previous is not None and plan.previous.version == version
    assert plan.previous.rows == pairs[:OLD]
    assert not plan.previous.on_gpu
    assert plan.additions == [*reversed(pairs[OLD:]), pairs[0]]
    same = plan_extension(own, version, pairs[:OLD], base)
    assert same.previous is not None and same.additions == []


def test_what_an_index_cannot_grow_from_means_a_rebuild(own, live, base):
    pairs = live.rows
    version = published(own, pairs[:OLD], live, base)

    def reason(settings, version, pairs, base_checksum=base):
        plan = plan_extension(settings, version, pairs, base_checksum)
        assert plan.previous is None and plan.additions == []
        return plan.reason

    assert reason(own, None, pairs) == "no previous index"
    assert "cannot be read" in reason(own, "20000101-000000-000000", pairs)
    assert reason(own, version, pairs[1:]) == "1 rows of the previous index are no longer there"
    other_model = own.model_copy(update={"embedding_model": "bert-base-uncased"})
    assert "another embedding model" in reason(other_model, version, pairs)
    assert "other dataset" in reason(own, version, pairs, "0" * 64)


def test_an_exact_index_growing_past_its_limit_is_rebuilt(own, live, base):
    pairs = live.rows
    limited = own.model_copy(update={"exact_index_max_rows": OLD + 5})
    version = published(limited, pairs[:OLD], live, base)
    assert loaded(limited, version, live).metadata["structure"]["type"] == FLAT
    within = plan_extension(limited, version, pairs[: OLD + 5], base)
    assert within.previous is not None and within.additions == pairs[OLD : OLD + 5]
    past = plan_extension(limited, version, pairs, base)
    assert past.previous is None
    assert f"for {len(pairs)} rows, not exact" in past.reason


@pytest.mark.parametrize("kind", [HNSW, IVF])
def test_an_approximate_index_round_trips_and_grows(own, live, base, kind):
    pairs = live.rows
    approximate = own.model_copy(
        update={
            "exact_index_max_rows": 10,
            "approximate_index": kind,
            "hnsw_ef_search": 50,
            "ivf_nprobe": 1000,
        }
    )
    version = published(approximate, pairs[:OLD], live, base)
    first = loaded(approximate, version, live)
    structure = first.metadata["structure"]
    assert structure == choose(OLD, approximate) == describe(first._cpu_index)
    assert structure["type"] == kind
    typed = faiss.downcast_index(first._cpu_index)
    if kind == HNSW:
        assert typed.hnsw.efSearch == 50
    else:
        assert typed.nprobe == typed.nlist == structure["lists"]
    assert_finds_its_own_questions(first, pairs[:OLD])
    plan = plan_extension(approximate, version, pairs, base)
    assert plan.previous is not None, plan.reason
    assert plan.additions == pairs[OLD:]
    plan.previous.extended(plan.additions, approximate, base).publish(approximate.qa_index_dir)
    grown = load_index_version(approximate, encoder=live.encoder)
    assert grown.metadata["extended_from"]["version"] == version
    assert describe(grown._cpu_index) == structure and grown.rows == list(pairs)
    assert_finds_its_own_questions(grown, pairs)


def test_an_index_whose_metadata_records_another_structure_is_refused(own, live, base):
    pairs = live.rows
    version = published(own, pairs[:OLD], live, base)
    directory = index_path(own.qa_index_dir, version)
    meta = json.loads((directory / META_FILE).read_text())
    unrecorded = {key: value for key, value in meta.items() if key != "structure"}
    (directory / META_FILE).write_text(json.dumps(unrecorded))
    assert loaded(own, version, live).rows == pairs[:OLD]  # saved before structures: exact
    # Settings under which HNSW is the structure for this size, so only the file disagrees.
    hnsw = own.model_copy(update={"approximate_index": "hnsw", "exact_index_max_rows": OLD - 1})
    meta["structure"] = choose(len(pairs), hnsw)
    (directory / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"records an HNSW .* holds exact.*assistant index"):
        loaded(own, version, live)
    assert "cannot be loaded" in plan_extension(hnsw, version, pairs, base).reason

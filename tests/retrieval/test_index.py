import csv
import json
import shutil

import pytest

from assistant.core.errors import ArtifactError
from assistant.core.files import file_sha256
from assistant.datasets.loading import QA_FILE, load_dataset, qa_checksum
from assistant.retrieval import index as index_module
from assistant.retrieval.index import (
    DATA_FILE_KEY,
    INDEX_FILE,
    META_FILE,
    FaissRetriever,
    data_file_unchanged,
    gpu_available,
    index_path,
    load_index_version,
)


@pytest.fixture(scope="module")
def retriever(built_settings):
    return load_index_version(built_settings)


@pytest.fixture
def index_copy(built_settings, tmp_path):
    target = tmp_path / "qa"
    shutil.copytree(index_path(built_settings.qa_index_dir), target)
    return target


def test_metadata_describes_the_index(built_settings, retriever):
    meta = json.loads((index_path(built_settings.qa_index_dir) / META_FILE).read_text())
    dataset = load_dataset(built_settings.data_dir)
    assert meta["embedding_model"] == built_settings.embedding_model
    assert meta["dimension"] == 384
    assert meta["rows"] == len(dataset.qa_pairs) == len(retriever.rows)
    assert meta["source_checksum"] == meta["base_checksum"] == qa_checksum(dataset)
    assert meta["version"] == retriever.version


def test_a_known_question_is_found_first_with_cosine_one(retriever):
    pair = retriever.rows[5]
    [hits] = retriever.search([pair.question], k=3)
    assert hits[0].question == pair.question
    assert hits[0].answer == pair.answer
    # An int8 encoder's vector moves a little with the batch it was encoded in.
    assert hits[0].score == pytest.approx(1.0, abs=0.03)
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_a_paraphrase_finds_a_question_of_the_same_intent(retriever):
    [hits] = retriever.search(["what does shipping cost me"], k=1)
    assert hits[0].intent == "shipping_cost"


def test_corrupt_index_is_refused_with_rebuild_hint(built_settings, index_copy):
    with (index_copy / INDEX_FILE).open("r+b") as file:
        file.seek(200)
        file.write(b"\x00garbage\x00")
    with pytest.raises(ArtifactError, match=r"corrupt.*assistant index"):
        FaissRetriever.load(index_copy, built_settings)


def test_truncated_metadata_is_refused(built_settings, index_copy):
    (index_copy / META_FILE).write_text('{"rows": ')
    with pytest.raises(ArtifactError, match="assistant index"):
        FaissRetriever.load(index_copy, built_settings)


def test_index_from_another_model_is_refused(built_settings, index_copy):
    other = built_settings.model_copy(update={"embedding_model": "bert-base-uncased"})
    with pytest.raises(ArtifactError, match="built with embedding model"):
        FaissRetriever.load(index_copy, other)


def test_index_from_other_data_is_refused(built_settings, index_copy):
    with pytest.raises(ArtifactError, match="other Q&A data"):
        FaissRetriever.load(index_copy, built_settings, expected_source_checksum="0" * 64)


def test_missing_index_says_how_to_rebuild(built_settings, tmp_path):
    with pytest.raises(ArtifactError, match=r"missing.*assistant index"):
        FaissRetriever.load(tmp_path / "none", built_settings)


@pytest.mark.skipif(gpu_available(), reason="checks the CPU fallback")
def test_gpu_demanded_without_a_gpu_is_a_clear_error(built_settings, retriever):
    on = built_settings.model_copy(update={"faiss_gpu": "on"})
    with pytest.raises(RuntimeError, match="FAISS sees no GPU"):
        load_index_version(on, encoder=retriever.encoder)
    assert not retriever.on_gpu


@pytest.mark.skipif(not gpu_available(), reason="needs faiss-gpu and a CUDA GPU")
def test_gpu_index_gives_the_cpu_results(built_settings, retriever):
    on = built_settings.model_copy(update={"faiss_gpu": "on"})
    gpu = load_index_version(on, encoder=retriever.encoder)
    assert gpu.on_gpu
    questions = [row.question for row in retriever.rows[:10]]
    for cpu_hits, gpu_hits in zip(retriever.search(questions), gpu.search(questions), strict=True):
        assert [h.question for h in cpu_hits] == [h.question for h in gpu_hits]


@pytest.fixture
def own_copy(built_settings, tmp_path):
    """Settings over a copy of the session's data folder and index, free to change."""
    shutil.copytree(built_settings.data_dir, tmp_path / "data")
    shutil.copytree(built_settings.index_dir, tmp_path / "index")
    return built_settings.model_copy(
        update={"data_dir": tmp_path / "data", "index_dir": tmp_path / "index"}
    )


def test_the_index_records_the_bytes_of_the_qa_file_it_was_built_from(built_settings):
    meta = json.loads((index_path(built_settings.qa_index_dir) / META_FILE).read_text())
    assert meta[DATA_FILE_KEY] == file_sha256(built_settings.data_dir / QA_FILE)


def test_an_unchanged_qa_file_is_not_parsed_at_load(own_copy, retriever, monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was parsed")

    monkeypatch.setattr(index_module, "load_qa_pairs", refuse)
    loaded = FaissRetriever.from_settings(own_copy, previous=retriever)
    assert loaded.version == retriever.version and loaded.rows == retriever.rows


def test_a_rewritten_qa_file_with_the_same_pairs_is_parsed_and_accepted(own_copy, retriever):
    path = own_copy.data_dir / QA_FILE
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, quoting=csv.QUOTE_ALL).writerows(rows)  # other bytes, the same pairs
    assert not data_file_unchanged(
        json.loads((index_path(own_copy.qa_index_dir) / META_FILE).read_text()), own_copy
    )
    assert FaissRetriever.from_settings(own_copy, previous=retriever).rows == retriever.rows


def test_a_changed_qa_file_is_refused_at_load(own_copy, retriever):
    path = own_copy.data_dir / QA_FILE
    with path.open("a", encoding="utf-8", newline="") as file:
        csv.writer(file).writerow(["can I pay in instalments", "Not yet.", "payment_methods"])
    with pytest.raises(ArtifactError, match="other Q&A data"):
        FaissRetriever.from_settings(own_copy, previous=retriever)

import json
import shutil

import numpy as np
import pytest

from assistant.retrieval.index import META_FILE, FaissRetriever, index_path, load_encoder
from assistant.retrieval.onnx_encoder import RECORD_KEY, OnnxSentenceEncoder, fits

QUESTIONS = ["how much does delivery cost", "where is my order", "hello", "can I return shoes?"]


@pytest.fixture(scope="module")
def torch_encoder(built_settings):
    return load_encoder(built_settings)


@pytest.fixture(scope="module")
def live(built_settings):
    directory = index_path(built_settings.qa_index_dir)
    return directory, json.loads((directory / META_FILE).read_text())


def test_the_index_version_holds_its_encoder_forms_and_the_decision(built_settings, live):
    directory, metadata = live
    record = metadata[RECORD_KEY]
    assert {entry["file"] for entry in record["files"].values()} == {
        "encoder.onnx",
        "encoder.int8.onnx",
    }
    assert all((directory / entry["file"]).is_file() for entry in record["files"].values())
    gate = record["gate"]
    assert gate["tolerance"] == built_settings.int8_mrr_tolerance
    assert gate["questions"] > 0 and 0 <= gate["fp32"] <= 1 and 0 <= gate["int8"] <= 1
    assert record["agreement"]["max_difference_fp32_vs_torch"] < 1e-3


def test_the_index_encodes_queries_with_the_form_that_built_it(built_settings, live):
    directory, metadata = live
    chosen = built_settings.model_copy(update={"encoder_runtime": "auto"})
    retriever = FaissRetriever.load(directory, chosen)
    assert isinstance(retriever.encoder, OnnxSentenceEncoder)
    assert retriever.encoder.runtime.startswith(f"onnx {metadata[RECORD_KEY]['indexed_with']}")
    for pair in retriever.rows[:10]:
        [hits] = retriever.search([pair.question], k=1)
        assert hits[0].question == pair.question
        assert hits[0].score > 0.9  # int8: the vector moves a little with its batch


def test_fp32_onnx_encodes_as_sentence_transformers_does(built_settings, live, torch_encoder):
    directory, metadata = live
    fp32 = built_settings.model_copy(update={"encoder_runtime": "fp32"})
    encoder = load_encoder(fp32, directory, metadata)
    assert encoder.runtime == "onnx fp32 (CPUExecutionProvider)"
    expected = torch_encoder.encode(QUESTIONS, normalize_embeddings=True)
    assert np.allclose(encoder.encode(QUESTIONS, normalize_embeddings=True), expected, atol=1e-4)
    assert encoder.encode("hello", normalize_embeddings=True).shape == (384,)
    assert encoder.get_embedding_dimension() == torch_encoder.get_embedding_dimension()


def test_int8_vectors_point_where_fp32_ones_do(built_settings, live, torch_encoder):
    directory, metadata = live
    int8 = built_settings.model_copy(update={"encoder_runtime": "int8"})
    vectors = load_encoder(int8, directory, metadata).encode(QUESTIONS, normalize_embeddings=True)
    expected = torch_encoder.encode(QUESTIONS, normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (np.sum(vectors * expected, axis=1) > 0.97).all()


def test_an_index_built_without_onnx_forms_loads_on_pytorch(built_settings, live, tmp_path):
    directory, metadata = live
    older = tmp_path / "qa"
    shutil.copytree(directory, older)
    for path in older.glob("*.onnx"):
        path.unlink()
    older_metadata = {key: value for key, value in metadata.items() if key != RECORD_KEY}
    (older / META_FILE).write_text(json.dumps(older_metadata))
    retriever = FaissRetriever.load(older, built_settings)
    assert not isinstance(retriever.encoder, OnnxSentenceEncoder)
    [hits] = retriever.search(["what does shipping cost me"], k=1)
    assert hits[0].intent == "shipping_cost"


def test_a_loaded_encoder_is_reused_only_for_an_index_it_fits(built_settings, live, torch_encoder):
    directory, metadata = live
    record = metadata[RECORD_KEY]
    chosen = built_settings.model_copy(update={"encoder_runtime": "auto"})
    retriever = FaissRetriever.load(directory, chosen)
    assert fits(retriever.encoder, record, "cpu", "auto")
    assert not fits(torch_encoder, record, "cpu", "auto")
    assert fits(torch_encoder, None, "cpu", "auto")
    assert not fits(retriever.encoder, None, "cpu", "auto")
    reloaded = FaissRetriever.load(directory, chosen, encoder=torch_encoder)
    assert isinstance(reloaded.encoder, OnnxSentenceEncoder)

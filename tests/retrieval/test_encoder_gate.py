import json

import pytest

from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import load_dataset
from assistant.retrieval.encoder_gate import build_gated_index
from assistant.retrieval.index import META_FILE, load_index_version
from assistant.retrieval.onnx_encoder import RECORD_KEY


def test_the_gate_keeps_fp32_when_the_tolerance_is_negative(built_settings, tmp_path):
    settings = built_settings.model_copy(
        update={"index_dir": tmp_path / "index", "int8_mrr_tolerance": -1.0}
    )
    dataset = load_dataset(settings.data_dir)
    questions = dataset_splits(dataset, settings).validation
    retriever = build_gated_index(dataset.qa_pairs, settings, questions)
    record = retriever.metadata[RECORD_KEY]
    assert record["chosen"] == "fp32" and record["gate"]["int8_passed"] is False
    assert record["gate"]["int8"] is not None  # measured, not assumed
    assert retriever.encoder.runtime == "onnx fp32 (CPUExecutionProvider)"
    [hits] = retriever.search([dataset.qa_pairs[3].question], k=1)
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)  # fp32: as in any batch
    folder = retriever.publish(settings.qa_index_dir)
    assert sorted(path.name for path in folder.glob("*.onnx")) == [
        "encoder.int8.onnx",
        "encoder.onnx",
    ]
    assert json.loads((folder / META_FILE).read_text())[RECORD_KEY] == record
    loaded = load_index_version(settings)
    assert loaded.encoder.runtime == "onnx fp32 (CPUExecutionProvider)"
    republished = loaded.publish(settings.qa_index_dir)  # a version made from a loaded one
    assert (republished / "encoder.onnx").is_file()
    assert json.loads((republished / META_FILE).read_text())[RECORD_KEY] == record


@pytest.mark.parametrize(("runtime", "indexed"), [("fp32", "fp32"), ("auto", "int8")])
def test_the_index_keeps_the_vectors_of_the_form_that_will_encode_queries(
    built_settings, tmp_path, runtime, indexed
):
    settings = built_settings.model_copy(
        update={
            "index_dir": tmp_path / "index",
            "int8_mrr_tolerance": 1.0,  # int8 passes: the gate chooses it
            "encoder_runtime": runtime,
        }
    )
    dataset = load_dataset(settings.data_dir)
    questions = dataset_splits(dataset, settings).validation
    retriever = build_gated_index(dataset.qa_pairs, settings, questions)
    record = retriever.metadata[RECORD_KEY]
    assert record["chosen"] == "int8" and record["indexed_with"] == indexed
    assert retriever.encoder.runtime == f"onnx {indexed} (CPUExecutionProvider)"
    retriever.publish(settings.qa_index_dir)
    loaded = load_index_version(settings)
    assert loaded.encoder.runtime == f"onnx {indexed} (CPUExecutionProvider)"
    pairs = dataset.qa_pairs[:20]
    found = loaded.search([pair.question for pair in pairs], k=1)
    assert [hits[0].question for hits in found] == [pair.question for pair in pairs]
    # Queries encoded as the rows were: fp32 gives the same vector in any batch; dynamic
    # int8 scales activations by the batch, so a query batched otherwise moves a little.
    assert min(hits[0].score for hits in found) > (0.995 if indexed == "fp32" else 0.95)

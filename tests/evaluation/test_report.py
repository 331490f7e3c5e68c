import json

import pytest

from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import load_dataset
from assistant.evaluation.measures import embedding_map, evaluate_classifier, evaluate_retrieval
from assistant.evaluation.report import write_report

PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def written(assistant, built_settings, tmp_path_factory):
    held_out = dataset_splits(load_dataset(built_settings.data_dir), built_settings).test
    evaluation = evaluate_classifier(assistant.classifier, held_out, "out_of_scope")
    evaluation["retrieval"] = evaluate_retrieval(assistant.retriever, held_out)
    directory = tmp_path_factory.mktemp("report")
    page = write_report(evaluation, directory, embedding_map(assistant.classifier, held_out))
    return evaluation, directory, page


def test_every_chart_is_a_png(written):
    _, directory, _ = written
    for name in (
        "confusion_matrix",
        "confidence_histogram",
        "reliability_diagram",
        "embedding_map",
    ):
        assert (directory / f"{name}.png").read_bytes()[:4] == PNG_MAGIC


def test_json_holds_the_evaluation(written):
    evaluation, directory, _ = written
    saved = json.loads((directory / "report.json").read_text())
    assert saved["accuracy"] == evaluation["accuracy"]
    assert saved["retrieval"]["recall@1"] == evaluation["retrieval"]["recall@1"]


def test_page_shows_figures_charts_and_mistakes(written):
    evaluation, _, page = written
    text = page.read_text()
    assert f"| accuracy | {evaluation['accuracy']:.4f} |" in text
    assert "![Reliability diagram](reliability_diagram.png)" in text
    assert "## Retrieval index" in text and "recall@1" in text
    assert "## Per intent (worst F1 first)" in text
    for row in evaluation["misclassified"][:3]:
        assert row["text"].replace("|", "\\|") in text

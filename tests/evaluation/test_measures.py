import numpy as np
import pytest

from assistant.datasets.corpus import dataset_splits
from assistant.datasets.loading import IntentExample, load_dataset
from assistant.evaluation.measures import embedding_map, evaluate_classifier, evaluate_retrieval


@pytest.fixture(scope="module")
def held_out(built_settings):
    return dataset_splits(load_dataset(built_settings.data_dir), built_settings).test


@pytest.fixture(scope="module")
def evaluation(assistant, held_out, built_settings):
    return evaluate_classifier(assistant.classifier, held_out, built_settings.out_of_scope_label)


def test_figures_agree_with_each_other(evaluation, held_out):
    assert evaluation["examples"] == len(held_out)
    wrong = len(evaluation["misclassified"])
    assert evaluation["accuracy"] == pytest.approx(1 - wrong / len(held_out))
    counts = np.array(evaluation["confusion_matrix"]["counts"])
    assert counts.sum() == len(held_out)
    assert np.trace(counts) == len(held_out) - wrong
    confidences = evaluation["confidences"]
    assert len(confidences["correct"]) + len(confidences["wrong"]) == len(held_out)


def test_per_intent_figures_cover_every_intent_in_the_data(evaluation, held_out):
    assert set(evaluation["per_intent"]) >= {e.intent for e in held_out}
    for row in evaluation["per_intent"].values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1


def test_calibration_is_reported_before_and_after(evaluation):
    calibration = evaluation["calibration"]
    assert calibration["temperature"] > 0
    assert 0 <= calibration["ece_before"] <= 1 and 0 <= calibration["ece_after"] <= 1
    assert sum(b["count"] for b in calibration["bins_after"]) == evaluation["examples"]


def test_fallback_figures_include_out_of_scope_recall(evaluation):
    fallback = evaluation["fallback"]
    assert fallback["out_of_scope_recall"] is not None  # the demo slice has out-of-scope messages
    assert fallback["in_scope_accuracy"] <= fallback["without_fallback"]["in_scope_accuracy"]


def test_unknown_intents_in_evaluation_data_are_refused(assistant, built_settings):
    examples = [IntentExample("what is the meaning of life", "philosophy")]
    with pytest.raises(ValueError, match="philosophy"):
        evaluate_classifier(assistant.classifier, examples, built_settings.out_of_scope_label)


def test_retrieval_recall_grows_with_k(assistant, held_out):
    figures = evaluate_retrieval(assistant.retriever, held_out, ks=(1, 3, 5))
    assert figures["questions"] == sum(e.intent != "out_of_scope" for e in held_out)
    assert 0 < figures["recall@1"] <= figures["recall@3"] <= figures["recall@5"] <= 1
    assert figures["recall@1"] <= figures["mrr@5"] <= figures["recall@5"]


def test_embedding_map_has_a_point_per_message(assistant, held_out):
    result = embedding_map(assistant.classifier, held_out)
    assert np.array(result["points"]).shape == (len(held_out), 2)
    assert sorted(result["intents"]) == sorted(e.intent for e in held_out)

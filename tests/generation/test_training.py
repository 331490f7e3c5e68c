import numpy as np
import pytest
from transformers import GPT2Config, GPT2LMHeadModel, TrainerCallback

from assistant.datasets.loading import QAPair, load_dataset
from assistant.generation.training import (
    grounding_threshold,
    leave_one_out_contexts,
    relevance_threshold,
    train_generator,
    train_tokenizer,
)
from assistant.generation.writer import END, PAD, SPECIAL_TOKENS, Gpt2AnswerWriter, generator_path
from assistant.lifecycle.runs import RUNS_DIR
from assistant.retrieval.index import load_index_version


class StopAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


@pytest.fixture(scope="module")
def pairs(built_settings):
    return load_dataset(built_settings.data_dir).qa_pairs


@pytest.fixture(scope="module")
def retriever(built_settings):
    return load_index_version(built_settings)


def test_a_pair_never_sees_itself_in_its_context(pairs, retriever):
    contexts = leave_one_out_contexts(retriever, pairs, 2)
    assert all(len(row) == 2 for row in contexts)
    for pair, row in zip(pairs, contexts, strict=True):
        assert pair.answer not in row or sum(p.answer == pair.answer for p in pairs) > 1


def _bag_of_words(texts):
    vocabulary = ["delivery", "refund", "days", "card"]
    vectors = np.array([[t.lower().count(w) + 0.01 for w in vocabulary] for t in texts], float)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_threshold_is_the_quantile_of_real_answers_similarity():
    pairs = [QAPair("q1", "delivery days", "a"), QAPair("q2", "refund card", "b")]
    contexts = [["delivery takes days", "refund to card"], ["refund card"]]
    answers = ["delivery days", "refund card"]
    vectors = dict(zip(answers, _bag_of_words(answers), strict=True))
    first = max(float(vectors["delivery days"] @ v) for v in _bag_of_words(contexts[0]))
    second = 1.0  # its context is its own text
    expected = np.quantile([first, second], 0.5)
    assert grounding_threshold(_bag_of_words, pairs, contexts, 0.5) == pytest.approx(expected)
    assert grounding_threshold(_bag_of_words, pairs, contexts, 0.0) == pytest.approx(first)


def test_the_relevance_threshold_is_the_quantile_of_answers_similarity_to_their_question():
    pairs = [
        QAPair("how many delivery days", "delivery takes days", "a"),
        QAPair("refund to my card", "delivery days", "b"),
    ]
    on_topic = float(
        np.prod(_bag_of_words(["how many delivery days", "delivery takes days"]), 0).sum()
    )
    off_topic = float(np.prod(_bag_of_words(["refund to my card", "delivery days"]), 0).sum())
    assert off_topic < on_topic
    assert relevance_threshold(_bag_of_words, pairs, 0.0) == pytest.approx(off_topic)
    assert relevance_threshold(_bag_of_words, pairs, 1.0) == pytest.approx(on_topic)


def test_the_tokenizer_round_trips_text_and_keeps_markers_whole(pairs):
    tokenizer = train_tokenizer(pairs, 400)
    text = " Your parcel ships in 3 days — café crème!"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    for token in SPECIAL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    assert tokenizer.eos_token == END and tokenizer.pad_token == PAD


def _settings(built_settings, root, **update):
    return built_settings.model_copy(update={"models_dir": root, "seed": 3, **update})


def test_a_stopped_run_resumes_and_publishes(built_settings, pairs, retriever, tmp_path, capsys):
    settings = _settings(built_settings, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train_generator(pairs, settings, "sum", retriever, callbacks=[StopAfterFirstSave()])
    assert any((settings.generator_models_dir / RUNS_DIR).rglob("checkpoint-*"))
    report = train_generator(pairs, settings, "sum", retriever)
    assert "Resuming" in capsys.readouterr().out
    assert not any((settings.generator_models_dir / RUNS_DIR).iterdir())
    loaded = Gpt2AnswerWriter.load(settings.generator_models_dir, "cpu")
    assert loaded.version == report.version
    assert loaded.grounding_threshold == report.metrics["grounding_threshold"]
    assert loaded.relevance_threshold == report.metrics["relevance_threshold"]
    assert -1.0 <= loaded.grounding_threshold <= 1.0


def test_a_pretrained_gpt2_folder_is_fine_tuned(built_settings, pairs, retriever, tmp_path):
    base = tmp_path / "base"
    tokenizer = train_tokenizer(pairs, 400)
    tokenizer.save_pretrained(base)
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)
    ).save_pretrained(base)
    settings = _settings(built_settings, tmp_path / "models", generator_base_model=str(base))
    report = train_generator(pairs, settings, "sum", retriever)
    generator = Gpt2AnswerWriter.load(settings.generator_models_dir, "cpu")
    assert generator.metadata["base_model"] == str(base)
    assert generator.runtime.startswith("onnx")  # a fine-tuned model is exported too
    tuned = GPT2LMHeadModel.from_pretrained(generator_path(settings.generator_models_dir))
    assert report.metrics["parameters"] == sum(p.numel() for p in tuned.parameters())
    assert isinstance(generator.generate("how much is delivery?", [pairs[0].answer]), str)


def test_prompts_longer_than_the_base_model_are_refused(built_settings, pairs, retriever, tmp_path):
    base = tmp_path / "base"
    train_tokenizer(pairs, 400).save_pretrained(base)
    GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=32, n_layer=1, n_head=2)).save_pretrained(
        base
    )
    settings = _settings(built_settings, tmp_path / "models", generator_base_model=str(base))
    with pytest.raises(ValueError, match="positions"):
        train_generator(pairs, settings, "sum", retriever)


def test_too_few_pairs_are_refused(built_settings, pairs, tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        train_generator(pairs[:1], _settings(built_settings, tmp_path), "sum")

import copy
import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel, LogitsProcessor, LogitsProcessorList

from assistant.core.errors import ArtifactError, ConfigError
from assistant.core.onnx_forms import AGREEMENT
from assistant.generation import writer
from assistant.generation.decoding import repeating_next_tokens
from assistant.generation.onnx_decoder import DECODER_FILE
from assistant.generation.writer import (
    ANSWER,
    CONTEXT,
    END,
    METADATA_FILE,
    PAD,
    QUESTION,
    TOKENIZER_FILE,
    Gpt2AnswerWriter,
    PromptLimits,
    answer_ids,
    decoding_for,
    generator_path,
    prompt_ids,
    sentence_ids,
)
from assistant.lifecycle.versions import CURRENT_FILE

PAST = ["Standard delivery takes 3 to 5 working days.", "Express delivery arrives next day."]


@pytest.fixture(scope="module")
def generator(built_settings):
    return Gpt2AnswerWriter.load(built_settings.generator_models_dir, "cpu")


def _id(generator, token):
    return generator.tokenizer.convert_tokens_to_ids(token)


def test_the_prompt_holds_the_past_answers_then_the_question(generator):
    limits = PromptLimits(context_answers=1, context_tokens=4, question_tokens=3)
    ids = prompt_ids(generator.tokenizer, "how long does delivery take", PAST, limits)
    context, question, answer = (_id(generator, t) for t in (CONTEXT, QUESTION, ANSWER))
    assert ids.count(context) == 1  # only `context_answers` past answers
    assert ids[0] == context and ids[-1] == answer
    assert ids.index(question) == 5  # the marker and 4 tokens of the past answer
    assert len(ids) == 1 + 4 + 1 + 3 + 1


def test_an_answer_ends_with_the_marker_only_when_it_fits_whole(generator):
    end = _id(generator, END)
    short = answer_ids(generator.tokenizer, "Yes.", PromptLimits(answer_tokens=20))
    long = answer_ids(generator.tokenizer, PAST[0] * 5, PromptLimits(answer_tokens=8))
    assert short[-1] == end
    assert len(long) == 8 and end not in long


@pytest.mark.parametrize("decoding", ["sentences", "free"])
def test_the_onnx_form_serves_and_writes_what_pytorch_writes(built_settings, decoding):
    models = built_settings.generator_models_dir
    on_onnx = Gpt2AnswerWriter.load(models, "cpu", decoding=decoding)
    on_torch = Gpt2AnswerWriter.load(models, "cpu", runtime="torch", decoding=decoding)
    assert on_onnx.runtime.startswith("onnx fp32")
    assert on_torch.runtime == "torch (cpu)"
    record = on_onnx.metadata["onnx"]
    assert record["disagreement"] <= AGREEMENT
    for question in ("how long does delivery take?", "can I pay by card", "hello"):
        assert on_onnx.generate(question, PAST) == on_torch.generate(question, PAST)


def test_a_model_trained_from_scratch_writes_whole_sentences_of_the_past_answers(generator):
    assert generator.metadata["base_model"] is None and generator.decoding == "sentences"
    generator = copy.copy(generator)  # the tests' tiny vocabulary spends a token a letter or two
    generator.limits = dataclasses.replace(generator.limits, answer_tokens=200)
    past = [*PAST, "Returns are free within 30 days. Refunds take 5 days."]
    allowed = {"Standard delivery takes 3 to 5 working days.", "Express delivery arrives next day."}
    for question in ("how long does delivery take?", "can I pay by card", "hello", "refund?"):
        answer = generator.generate(question, past)
        written = answer.replace(". ", ".\n").splitlines()
        # the third past answer is not in the prompt (context_answers = 2), so not copied
        assert written and set(written) <= allowed, answer


class _OneTokenAPass:
    """A decoder asked about every token: forced tokens are fed one at a time."""

    def __init__(self, decoder):
        self.decoder, self.passes = decoder, 0

    def start(self, prompt):
        self.passes += 1
        return self.decoder.start(prompt)

    def feed(self, tokens, state):
        logits = None
        for token in tokens:
            self.passes += 1
            logits, state = self.decoder.feed([token], state)
        return logits, state


class _CountedPasses(_OneTokenAPass):
    def feed(self, tokens, state):
        self.passes += 1
        return self.decoder.feed(tokens, state)


def test_copying_writes_the_same_answer_in_fewer_passes_than_asking_at_every_token(generator):
    generator = copy.copy(generator)
    generator.limits = dataclasses.replace(generator.limits, answer_tokens=200)
    every_token, counted = _OneTokenAPass(generator.decoder), _CountedPasses(generator.decoder)
    asked_each_time, asked_at_choices = copy.copy(generator), copy.copy(generator)
    asked_each_time.decoder, asked_at_choices.decoder = every_token, counted
    for question in ("how long does delivery take?", "can I pay by card", "hello"):
        assert asked_at_choices.generate(question, PAST) == asked_each_time.generate(question, PAST)
    assert counted.passes < every_token.passes / 2


def test_sentences_have_the_tokens_they_have_inside_an_answer(generator):
    tokenizer = generator.tokenizer
    text = "Yes, it costs $4.95. Orders ship e.g. today! Is that fine?"
    assert [tokenizer.decode(ids) for ids in sentence_ids(tokenizer, [text])] == [
        " Yes, it costs $4.95.",
        " Orders ship e.g. today!",
        " Is that fine?",
    ]
    whole = tokenizer.encode(" " + text)
    assert [i for ids in sentence_ids(tokenizer, [text]) for i in ids] == whole


def test_auto_decoding_writes_freely_with_a_pretrained_base_model():
    assert decoding_for("auto", {"base_model": None}) == "sentences"
    assert decoding_for("auto", {"base_model": "gpt2"}) == "free"
    assert decoding_for("free", {"base_model": None}) == "free"
    assert decoding_for("sentences", {"base_model": "gpt2"}) == "sentences"


def test_it_writes_what_transformers_generate_writes(built_settings):
    """The free decoding loop is greedy search as `generate` runs it, with the repetition
    rule applied to the answer only."""
    generator = Gpt2AnswerWriter.load(built_settings.generator_models_dir, "cpu", decoding="free")
    folder = generator_path(built_settings.generator_models_dir)
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    for question in ("how long does delivery take?", "can I pay by card", "hello"):
        prompt = prompt_ids(tokenizer, question, PAST, generator.limits)
        assert prompt == prompt_ids(generator.tokenizer, question, PAST, generator.limits)
        with torch.inference_mode():
            ids = model.generate(
                torch.tensor([prompt]),
                max_new_tokens=generator.limits.answer_tokens,
                do_sample=False,
                eos_token_id=_id(generator, END),
                pad_token_id=_id(generator, PAD),
                logits_processor=LogitsProcessorList([_NoRepeatInAnswer(len(prompt))]),
            )
        expected = tokenizer.decode(ids[0, len(prompt) :], skip_special_tokens=True).strip()
        assert generator.generate(question, PAST) == expected


class _NoRepeatInAnswer(LogitsProcessor):
    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            banned = repeating_next_tokens(ids, 4)
            if banned:
                scores[row, banned] = -float("inf")
        return scores


def test_streamed_pieces_make_the_whole_answer(generator):
    pieces = list(generator.stream("how long does delivery take?", PAST))
    assert pieces
    assert "".join(pieces).strip() == generator.generate("how long does delivery take?", PAST)


def test_setting_stop_ends_the_stream_early(generator):
    stop = threading.Event()
    stop.set()
    stopped = "".join(generator.stream("how long does delivery take?", PAST, stop))
    full = generator.generate("how long does delivery take?", PAST)
    tokens = generator.tokenizer.encode
    assert len(tokens(stopped)) <= 1 < len(tokens(full))


def test_int8_serves_the_quantised_onnx_form_which_scores_nearly_the_same(
    built_settings, generator
):
    quantised = Gpt2AnswerWriter.load(built_settings.generator_models_dir, "cpu", int8=True)
    assert quantised.runtime == "onnx int8 (CPUExecutionProvider)"
    assert generator.runtime == "onnx fp32 (CPUExecutionProvider)"
    prompt = prompt_ids(generator.tokenizer, "is delivery free?", PAST, generator.limits)
    full, _ = generator.decoder.start(prompt)
    approximate, _ = quantised.decoder.start(prompt)
    assert not np.array_equal(full, approximate)  # it is another form
    assert np.corrcoef(full, approximate)[0, 1] > 0.98


def test_int8_runs_only_on_onnx_runtime_on_the_cpu(built_settings):
    with pytest.raises(ConfigError, match="generator_runtime"):
        Gpt2AnswerWriter.load(
            built_settings.generator_models_dir, "cpu", int8=True, runtime="torch"
        )
    with pytest.raises(ConfigError, match="CPU"):
        writer._serving_form(True, "auto", "cuda")
    assert writer._serving_form(False, "torch", "cuda") == "torch"


def test_int8_asked_of_a_version_saved_without_it_serves_onnx_fp32(built_settings, tmp_path):
    folder = _copy_current(built_settings, tmp_path)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    del metadata["onnx"]["files"]["int8"]  # as versions saved before the int8 form existed
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    served = Gpt2AnswerWriter.load(tmp_path, "cpu", int8=True)
    assert served.runtime == "onnx fp32 (CPUExecutionProvider)"


def _copy_current(built_settings, target):
    source = generator_path(built_settings.generator_models_dir)
    shutil.copytree(source, target / "v1")
    (target / CURRENT_FILE).write_text("v1\n")
    return target / "v1"


def test_a_generator_from_another_format_is_refused(built_settings, tmp_path):
    folder = _copy_current(built_settings, tmp_path)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, "format": 0}))
    with pytest.raises(ArtifactError, match="another version"):
        Gpt2AnswerWriter.load(tmp_path, "cpu")


def test_missing_weights_are_refused_with_a_hint(built_settings, tmp_path):
    folder = _copy_current(built_settings, tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="train-generator"):
        Gpt2AnswerWriter.load(tmp_path, "cpu", runtime="torch")


@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_a_damaged_onnx_form_is_refused_with_a_hint(built_settings, tmp_path, damage):
    folder = _copy_current(built_settings, tmp_path)
    if damage == "missing":
        (folder / DECODER_FILE).unlink()
    else:
        (folder / DECODER_FILE).write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="train-generator"):
        Gpt2AnswerWriter.load(tmp_path, "cpu")


def test_a_version_without_an_onnx_form_is_served_by_pytorch(built_settings, tmp_path):
    folder = _copy_current(built_settings, tmp_path)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    del metadata["onnx"]
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    (folder / DECODER_FILE).unlink()
    writer = Gpt2AnswerWriter.load(tmp_path, "cpu")
    assert writer.runtime == "torch (cpu)"
    assert writer.generate("how long does delivery take?", PAST) == Gpt2AnswerWriter.load(
        built_settings.generator_models_dir, "cpu"
    ).generate("how long does delivery take?", PAST)


def test_a_tokenizer_without_the_markers_is_refused(built_settings, tmp_path):
    folder = _copy_current(built_settings, tmp_path)
    document = json.loads((folder / TOKENIZER_FILE).read_text())
    document["added_tokens"] = [t for t in document["added_tokens"] if t["content"] != END]
    document["model"]["vocab"].pop(END, None)
    (folder / TOKENIZER_FILE).write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="does not match its model"):
        Gpt2AnswerWriter.load(tmp_path, "cpu")


def test_a_decoding_error_reaches_the_reader(generator):
    broken = copy.copy(generator)
    broken.decoder = _FailingDecoder()
    with pytest.raises(RuntimeError, match="out of memory"):
        list(broken.stream("how long does delivery take?", PAST))


class _FailingDecoder:
    def start(self, prompt):
        raise RuntimeError("out of memory")

    def feed(self, tokens, state):
        raise AssertionError("never reached")


def test_no_generator_says_how_to_train_one(tmp_path):
    with pytest.raises(ArtifactError, match="no answer generator"):
        Gpt2AnswerWriter.load(tmp_path, "cpu")

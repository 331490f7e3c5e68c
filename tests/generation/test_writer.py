import json
import shutil
import threading

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from transformers.pytorch_utils import Conv1D

from assistant.core.errors import ArtifactError
from assistant.generation.writer import (
    ANSWER,
    CONTEXT,
    END,
    METADATA_FILE,
    QUESTION,
    Gpt2AnswerWriter,
    NoRepeatInAnswer,
    PromptLimits,
    answer_ids,
    generator_path,
    prompt_ids,
    quantize_gpt2,
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


def test_repetition_control_ignores_the_prompt():
    scores = torch.zeros(1, 10)
    # prompt 5 6 7, then the answer 5 6: the prompt's "5 6 7" may be quoted
    NoRepeatInAnswer(3, prompt_length=3)(torch.tensor([[5, 6, 7, 5, 6]]), scores)
    assert torch.isfinite(scores).all()
    # the answer 1 2 3 1 2 already holds "1 2 3": 3 may not follow "1 2" again
    NoRepeatInAnswer(3, prompt_length=0)(torch.tensor([[1, 2, 3, 1, 2]]), scores)
    assert scores[0, 3] == -float("inf") and torch.isfinite(scores[0, :3]).all()


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


def test_int8_gives_nearly_the_same_scores(generator):
    prompt = prompt_ids(generator.tokenizer, "is delivery free?", PAST, generator.limits)
    ids = torch.tensor([prompt])
    int8_model = quantize_gpt2(generator.model)
    with torch.inference_mode():
        full = generator.model(ids).logits[0, -1]
        quantized = int8_model(ids).logits[0, -1]
    assert any(isinstance(m, DynamicLinear) for m in int8_model.modules())
    assert not any(isinstance(m, Conv1D) for m in int8_model.modules())
    assert any(isinstance(m, Conv1D) for m in generator.model.modules())  # the original is kept
    assert torch.corrcoef(torch.stack([full, quantized]))[0, 1] > 0.98


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
        Gpt2AnswerWriter.load(tmp_path, "cpu")


def test_no_generator_says_how_to_train_one(tmp_path):
    with pytest.raises(ArtifactError, match="no answer generator"):
        Gpt2AnswerWriter.load(tmp_path, "cpu")

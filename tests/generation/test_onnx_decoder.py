import json

import numpy as np
import pytest
from transformers import GPT2LMHeadModel

from assistant.generation import onnx_decoder
from assistant.generation.onnx_decoder import (
    DECODER_FILE,
    INT8_DECODER_FILE,
    compare_forms,
    export_decoder,
)
from assistant.generation.writer import generator_path


@pytest.fixture(scope="module")
def model(built_settings):
    return GPT2LMHeadModel.from_pretrained(generator_path(built_settings.generator_models_dir))


def test_the_saved_form_is_recorded_with_its_checksum_and_agreement(built_settings):
    folder = generator_path(built_settings.generator_models_dir)
    record = json.loads((folder / "generator.json").read_text())["onnx"]
    assert (folder / DECODER_FILE).stat().st_size == record["files"]["fp32"]["bytes"]
    assert record["chosen"] == "fp32"
    config = json.loads((folder / "config.json").read_text())
    heads = config["n_head"]
    assert record["cache_shape"] == [config["n_layer"], 2, heads, config["n_embd"] // heads]
    assert (folder / INT8_DECODER_FILE).stat().st_size == record["files"]["int8"]["bytes"]


def test_the_int8_form_is_compared_with_fp32_on_held_out_answers(built_settings):
    folder = generator_path(built_settings.generator_models_dir)
    check = json.loads((folder / "generator.json").read_text())["onnx"]["int8_check"]
    assert check["answers"] >= 1 and check["tokens"] > check["answers"]
    assert 0.9 <= check["top_token_agreement"] <= 1
    assert abs(check["int8_loss"] - check["fp32_loss"]) < 0.1 * check["fp32_loss"]


def test_a_form_compared_with_itself_agrees_on_every_answer_token(built_settings):
    from assistant.generation.writer import Gpt2AnswerWriter

    decoder = Gpt2AnswerWriter.load(built_settings.generator_models_dir, "cpu").decoder
    rows = [
        {"input_ids": [5, 6, 7, 8, 9, 10], "labels": [-100, -100, -100, 8, 9, 10]},
        {"input_ids": [5, 6], "labels": [-100, -100]},  # no answer: nothing to count
    ]
    check = compare_forms(decoder, decoder, rows)
    assert check["tokens"] == 3 and check["top_token_agreement"] == 1
    assert check["int8_loss"] == check["fp32_loss"] > 0


def test_a_failed_quantisation_keeps_the_fp32_form_and_says_why(model, tmp_path, monkeypatch):
    def broken(source, target, batches=(), operators=()):
        target.write_bytes(b"half written")
        raise ValueError("no linear layers")

    monkeypatch.setattr(onnx_decoder.int8, "quantise", broken)
    record = export_decoder(model, tmp_path)
    assert record["int8_error"] == "ValueError: no linear layers"
    assert list(record["files"]) == ["fp32"] and (tmp_path / DECODER_FILE).is_file()
    assert not (tmp_path / INT8_DECODER_FILE).exists()


def test_a_failed_export_leaves_no_file_and_says_why(model, tmp_path, monkeypatch):
    def broken(module, example, path, output_names, dynamic_axes=None):
        path.write_bytes(b"half written")
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_decoder, "export", broken)
    record = export_decoder(model, tmp_path)
    assert record == {"error": "RuntimeError: unsupported operator"}
    assert not (tmp_path / DECODER_FILE).exists()


def test_an_export_that_disagrees_with_pytorch_is_not_kept(model, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_decoder, "_disagreement", lambda *args: 0.5)
    record = export_decoder(model, tmp_path)
    assert "differs from PyTorch" in record["error"]
    assert not (tmp_path / DECODER_FILE).exists()


def test_the_cache_grows_by_the_tokens_given(built_settings):
    from assistant.generation.writer import Gpt2AnswerWriter

    decoder = Gpt2AnswerWriter.load(built_settings.generator_models_dir, "cpu").decoder
    logits, cache = decoder.start([5, 6, 7])
    assert cache.shape[4] == 3 and logits.ndim == 1 and np.isfinite(logits).all()
    _, cache = decoder.feed([int(logits.argmax())], cache)
    assert cache.shape[4] == 4

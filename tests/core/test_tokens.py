"""The ONNX forms' tokenizer gives the token ids, type ids and masks transformers gives."""

import json
import shutil

import numpy as np
import pytest
from transformers import AutoTokenizer

from assistant.core.base_models import resolve_model_path
from assistant.core.errors import ArtifactError
from assistant.core.settings import Settings
from assistant.core.tokens import CONFIG_FILE, TOKENIZER_FILE, TokenizerFile
from assistant.datasets.loading import load_dataset
from assistant.retrieval.onnx_encoder import encoder_settings

AWKWARD = [
    "",
    "   ",
    "Où est ma commande ? Ça fait 3 semaines",
    "emoji 😀 then 中文 then a zero\u200bwidth space",
    "tabs\tand\nnew lines",
    "\uff26\uff35\uff2c\uff2c width letters",
    "word " * 400,  # cut at the limit
]


def texts(settings: Settings) -> list[str]:
    dataset = load_dataset(settings.data_dir)
    return [e.text for e in dataset.examples] + [p.answer for p in dataset.qa_pairs] + AWKWARD


def assert_same_as_transformers(folder, max_length: int, sample: list[str]) -> None:
    ours, theirs = TokenizerFile.load(folder, max_length), AutoTokenizer.from_pretrained(folder)
    for start in range(0, len(sample), 16):
        batch = sample[start : start + 16]
        got = ours(batch, padding=True, truncation=True, max_length=max_length)
        want = theirs(
            batch, padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        for name in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{name}: {batch}")


def test_the_intent_models_tokens_match_transformers(built_settings, assistant):
    folder = built_settings.intent_models_dir / assistant.classifier.version
    assert_same_as_transformers(folder, assistant.classifier.max_length, texts(built_settings))


def test_the_sentence_encoders_tokens_match_transformers(built_settings):
    # Its tokenizer.json pads every text to a fixed length: a batch pads to its longest.
    folder = resolve_model_path(built_settings.embedding_model)
    _, limit = encoder_settings(folder)
    assert_same_as_transformers(folder, limit, texts(built_settings))


def test_a_broken_or_missing_tokenizer_says_which_file(tmp_path):
    with pytest.raises(ArtifactError, match=TOKENIZER_FILE):
        TokenizerFile.load(tmp_path, 64)
    (tmp_path / TOKENIZER_FILE).write_text('{"version": "1.0", "model": ', encoding="utf-8")
    with pytest.raises(ArtifactError, match="cannot read the tokenizer"):
        TokenizerFile.load(tmp_path, 64)


def test_it_refuses_what_it_cannot_give(built_settings, assistant):
    folder = built_settings.intent_models_dir / assistant.classifier.version
    tokenizer = TokenizerFile.load(folder, 64)
    with pytest.raises(ValueError, match="NumPy"):
        tokenizer(["hello"], return_tensors="pt")
    with pytest.raises(ValueError, match="64 tokens, not 32"):
        tokenizer(["hello"], max_length=32)


def test_without_padding_in_tokenizer_json_it_pads_as_transformers_config_says(
    built_settings, assistant, tmp_path
):
    folder = shutil.copytree(
        built_settings.intent_models_dir / assistant.classifier.version, tmp_path / "model"
    )
    saved = json.loads((folder / TOKENIZER_FILE).read_text(encoding="utf-8"))
    (folder / TOKENIZER_FILE).write_text(json.dumps({**saved, "padding": None}), "utf-8")
    assert_same_as_transformers(folder, assistant.classifier.max_length, AWKWARD)

    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "pad_token": "<nothing>"}), "utf-8")
    with pytest.raises(ArtifactError, match="'<nothing>' is not in the vocabulary"):
        TokenizerFile.load(folder, 64)

    (folder / CONFIG_FILE).write_text("[]", "utf-8")  # valid JSON, not settings
    with pytest.raises(ArtifactError, match="not a JSON object"):
        TokenizerFile.load(folder, 64)

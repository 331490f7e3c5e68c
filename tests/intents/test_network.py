import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from assistant.core.base_models import resolve_model_path
from assistant.intents.network import IntentModel, embed_texts

BASE = resolve_model_path("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    return AutoTokenizer.from_pretrained(BASE), IntentModel(AutoModel.from_pretrained(BASE), 4, 0.1)


def test_forward_gives_logits_and_a_loss_with_labels(parts):
    tokenizer, model = parts
    encoded = tokenizer(["hello there", "where is my order"], padding=True, return_tensors="pt")
    output = model(**encoded, labels=torch.tensor([0, 3]))
    assert output["logits"].shape == (2, 4)
    assert output["loss"].item() > 0
    assert "loss" not in model(**encoded)


def test_padding_does_not_change_the_embedding(parts):
    tokenizer, model = parts
    model.eval()
    alone = embed_texts(model, tokenizer, ["hi"], 32, "cpu")
    padded = embed_texts(
        model, tokenizer, ["hi", "a much longer message than the first one"], 32, "cpu"
    )
    assert np.allclose(alone[0], padded[0], atol=1e-5)


def test_head_can_be_set_from_a_fitted_probe(parts):
    _, model = parts
    weight, bias = np.ones((4, 384)), np.arange(4.0)
    model.set_head(weight, bias)
    assert torch.equal(model.head.bias, torch.arange(4.0))


def test_frozen_word_embeddings_get_no_gradient(parts):
    tokenizer, model = parts
    model.freeze_word_embeddings()
    encoded = tokenizer(["hello"], return_tensors="pt")
    model(**encoded, labels=torch.tensor([1]))["loss"].backward()
    assert model.encoder.get_input_embeddings().weight.grad is None
    assert any(p.grad is not None for p in model.encoder.encoder.parameters())
    model.zero_grad()


def test_save_and_load_round_trip(parts, tmp_path):
    tokenizer, model = parts
    model.eval()
    model.save(tmp_path)
    loaded = IntentModel.load(tmp_path).eval()
    encoded = tokenizer(["where is my order"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(model(**encoded)["logits"], loaded(**encoded)["logits"], atol=1e-5)

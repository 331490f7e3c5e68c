"""The intent network: a BERT encoder, mean pooling, and a linear head.

Mean-pooled, unit-length sentence embeddings are what the MiniLM sentence
encoder was trained to produce, so a head on them starts from a good place: it
is initialised from a logistic regression fitted on the frozen embeddings
(linear probing), and the whole network is then fine-tuned from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel

HEAD_FILE = "head.safetensors"
EMBED_BATCH = 128


class IntentModel(torch.nn.Module):
    """Returns `{"logits", "loss"}` so the Hugging Face `Trainer` can drive it."""

    def __init__(
        self, encoder: torch.nn.Module, num_labels: int, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)
        self.label_smoothing = label_smoothing

    @property
    def num_labels(self) -> int:
        return self.head.out_features

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any):
        """Unit-length mean of the token states, padding excluded."""
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **extra
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)

    def scores(self, **encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the sentence embedding they come from, in one pass."""
        embedding = self.embed(**encoded)
        return self.head(embedding), embedding

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        logits = self.head(self.embed(input_ids, attention_mask, **extra))
        output = {"logits": logits}
        if labels is not None:
            output["loss"] = torch.nn.functional.cross_entropy(
                logits, labels, label_smoothing=self.label_smoothing
            )
        return output

    def set_head(self, weight: np.ndarray, bias: np.ndarray) -> None:
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(weight, dtype=self.head.weight.dtype))
            self.head.bias.copy_(torch.as_tensor(bias, dtype=self.head.bias.dtype))

    def freeze_word_embeddings(self) -> None:
        """Keep the vocabulary table fixed: half the parameters, little of the gain."""
        self.encoder.get_input_embeddings().weight.requires_grad_(False)

    def save(self, directory: Path) -> None:
        self.encoder.save_pretrained(directory)
        save_file(
            {name: tensor.contiguous() for name, tensor in self.head.state_dict().items()},
            str(directory / HEAD_FILE),
        )

    @classmethod
    def load(cls, directory: Path) -> IntentModel:
        """Load a saved model; raises OSError or ValueError when files are missing or bad."""
        encoder = AutoModel.from_pretrained(directory)
        head = load_file(str(directory / HEAD_FILE))
        model = cls(encoder, head["weight"].shape[0])
        model.head.load_state_dict(head)
        return model


def embed_texts(
    model: IntentModel,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    device: str,
    description: str = "Embedding",
) -> np.ndarray:
    """Sentence embeddings from the model's encoder, batched by length."""
    from tqdm.auto import tqdm

    model.to(device).eval()
    order = np.argsort([len(text) for text in texts])
    features = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    for start in tqdm(range(0, len(texts), EMBED_BATCH), desc=description, unit="batch"):
        rows = order[start : start + EMBED_BATCH]
        encoded = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        with torch.inference_mode():
            features[rows] = model.embed(**encoded).float().cpu().numpy()
    return features


class ExportedScores(torch.nn.Module):
    """The network as the export sees it: token tensors in, logits and embedding out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model.scores(input_ids=input_ids, attention_mask=attention_mask, **extra)

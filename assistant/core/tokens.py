"""A model folder's tokenizer run by the `tokenizers` library alone, for the ONNX forms.

`tokenizer.json` is what transformers' fast tokenizers run, and all an ONNX form needs
from a model folder besides its graph. Reading it directly keeps transformers, and the
PyTorch it imports, out of a server whose encoders are ONNX: seconds of start-up and
memory it would never use. Token ids, masks and type ids are those transformers gives
(checked on the datasets' texts in tests/core/test_tokens.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from assistant.core.errors import ArtifactError
from assistant.core.files import read_json

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"  # transformers' settings, the padding token among them


class TokenizerFile:
    """Pads each batch to its longest text and cuts texts at `max_length` tokens; called
    as transformers' tokenizers are for NumPy arrays."""

    def __init__(self, tokenizer: Tokenizer, max_length: int, pad_token: str) -> None:
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ArtifactError(f"the padding token {pad_token!r} is not in the vocabulary")
        tokenizer.enable_truncation(max_length)
        # Some folders save a fixed padded length: a batch is padded to its longest text.
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def load(cls, folder: Path, max_length: int) -> TokenizerFile:
        """Raises `ArtifactError` when the folder has no readable `tokenizer.json`."""
        path = Path(folder) / TOKENIZER_FILE
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # the library raises plain Exceptions for a broken file
            raise ArtifactError(f"cannot read the tokenizer {path}: {error}") from error
        return cls(tokenizer, max_length, padding_token(Path(folder), tokenizer))

    def __call__(
        self,
        texts: Sequence[str],
        padding: bool = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str = "np",
    ) -> dict[str, np.ndarray]:
        if return_tensors != "np" or not (padding and truncation):
            raise ValueError("TokenizerFile pads and truncates, to NumPy arrays only")
        if max_length is not None and max_length != self.max_length:
            raise ValueError(f"this tokenizer cuts at {self.max_length} tokens, not {max_length}")
        encodings = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }


def padding_token(folder: Path, tokenizer: Tokenizer) -> str:
    """The token a batch is padded with: as `tokenizer.json` pads, else as transformers'
    `tokenizer_config.json` names it, else BERT's."""
    if tokenizer.padding:
        return str(tokenizer.padding["pad_token"])
    config = folder / CONFIG_FILE
    if config.is_file():
        named = read_json(config, "Train the model again to write it anew.").get("pad_token")
        if isinstance(named, dict):  # an AddedToken written out whole
            named = named.get("content")
        if isinstance(named, str):
            return named
    return "[PAD]"

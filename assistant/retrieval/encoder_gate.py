"""Building an index with the fastest form of the sentence encoder that keeps retrieval.

The encoder is exported to ONNX and quantised to int8 (core/int8.py, its channel
scales measured on the past questions); the
Q&A pairs are indexed with each form and the held-out questions searched against
each index: MRR@10, a hit being a past question of the same intent (the figure
retraining compares, evaluation/measures.py). The int8 index is kept when its
MRR is at most `int8_mrr_tolerance` below fp32's; otherwise the fp32 one. The
index kept is the one of the form that will encode queries (`encoder_runtime`:
the gate's choice under 'auto', the default), recorded as `indexed_with`; it
carries its encoder's files and the record into its version folder, so serving
encodes queries as the index's vectors were encoded.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.base_models import pick_device, resolve_model_path
from assistant.core.int8 import calibration_batches
from assistant.core.onnx_forms import AGREEMENT, FP32, INT8, Session, gate_forms, serving_form
from assistant.core.settings import Settings
from assistant.datasets.loading import IntentExample, QAPair
from assistant.evaluation.measures import RETRIEVAL_KS, evaluate_retrieval
from assistant.retrieval.index import FaissRetriever, load_encoder
from assistant.retrieval.onnx_encoder import (
    ONNX_STEM,
    RECORD_KEY,
    OnnxSentenceEncoder,
    encoder_settings,
    export_encoder,
    scratch_folder,
)

MEASURE = f"mrr@{max(RETRIEVAL_KS)}"
AGREEMENT_TEXTS = 32

log = logging.getLogger(__name__)


def build_gated_index(
    pairs: Sequence[QAPair],
    settings: Settings,
    questions: Sequence[IntentExample],
    base_checksum: str | None = None,
) -> FaissRetriever:
    """`FaissRetriever.build` with the encoder form the gate chooses, its record (figures
    and decision) in the metadata; built with PyTorch when no ONNX form can be made."""
    torch_encoder = load_encoder(settings)
    folder = Path(tempfile.mkdtemp(prefix="encoder-onnx-"))
    tokenizer, limit = encoder_settings(resolve_model_path(settings.embedding_model))
    built: dict[str, FaissRetriever] = {}
    figures: dict[str, dict[str, Any]] = {}

    def score(session: Session) -> float | None:
        encoder = OnnxSentenceEncoder(session, tokenizer, limit, folder=folder)
        retriever = FaissRetriever.build(pairs, settings, encoder, base_checksum)
        built[session.form] = retriever
        figures[session.form] = evaluate_retrieval(retriever, questions)
        return figures[session.form].get(MEASURE)

    record, sessions = gate_forms(
        folder,
        ONNX_STEM,
        lambda path: export_encoder(torch_encoder, path),
        score,
        settings.int8_mrr_tolerance,
        f"held-out {MEASURE} (a past question of the same intent)",
        calibration_batches(tokenizer, [pair.question for pair in pairs], limit),
    )
    if not sessions:
        shutil.rmtree(folder, ignore_errors=True)
        retriever = FaissRetriever.build(pairs, settings, torch_encoder, base_checksum)
        retriever.metadata[RECORD_KEY] = record
        return retriever
    sample = [question.text for question in questions[:AGREEMENT_TEXTS]] or [
        pair.question for pair in pairs[:AGREEMENT_TEXTS]
    ]
    expected = torch_encoder.encode(sample, normalize_embeddings=True, convert_to_numpy=True)
    difference = float(np.abs(built[FP32].encode(sample) - expected).max())
    record["gate"]["questions"] = figures[FP32].get("questions", 0)
    record["agreement"] = {"texts": len(sample), "max_difference_fp32_vs_torch": difference}
    if difference > AGREEMENT:
        log.warning("the ONNX sentence encoder disagrees with PyTorch: PyTorch will serve")
        shutil.rmtree(folder, ignore_errors=True)
        retriever = FaissRetriever.build(pairs, settings, torch_encoder, base_checksum)
        retriever.metadata[RECORD_KEY] = {
            **record,
            "files": {},
            "chosen": None,
            "error": "the export disagrees with PyTorch",
        }
        return retriever
    record["indexed_with"] = indexing_form(record, settings, built)
    kept = built[record["indexed_with"]]
    kept.encoder.record = record
    scratch_folder(kept.encoder, folder)
    kept.metadata[RECORD_KEY] = record
    log.info(
        "sentence encoder: %s MRR fp32 %.4f, int8 %.4f; indexed and serving with %s",
        MEASURE,
        record["gate"][FP32] or 0,
        record["gate"][INT8] or 0,
        record["indexed_with"],
    )
    return kept


def indexing_form(record: dict[str, Any], settings: Settings, built: dict[str, Any]) -> str:
    """The form whose vectors the index keeps: the one that will encode the queries under
    the `encoder_runtime` setting: the gate's choice for 'auto' (the default)."""
    served = serving_form(record, pick_device(settings.device), settings.models.encoder_runtime)
    return served[0] if served and served[0] in built else record["chosen"]

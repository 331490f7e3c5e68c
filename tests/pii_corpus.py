"""The planted-PII corpus (tests/data/planted_pii.jsonl): messages written for this project,
each with the personal data planted in it (`planted`) and what must survive (`kept`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "planted_pii.jsonl"
PUBLIC_CONTACTS = ["help@pebbleandpine.example", "+1 555 0142"]


@dataclass(frozen=True)
class PlantedMessage:
    message: str
    planted: list[str]
    kept: list[str]


def load_planted_pii(path: Path = CORPUS) -> list[PlantedMessage]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [PlantedMessage(**json.loads(line)) for line in lines if line.strip()]

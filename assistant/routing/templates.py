"""Answer templates with slots: one per intent, filled from what the customer said."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import DataError
from assistant.core.settings import Settings
from assistant.datasets.loading import TEMPLATES_FILE
from assistant.text.slots import SLOT_EXTRACTORS


@dataclass(frozen=True)
class Template:
    intent: str
    text: str
    slots: tuple[str, ...]

    def fill(self, values: dict[str, str]) -> str:
        return self.text.format(**{slot: values[slot] for slot in self.slots})

    def missing(self, values: dict[str, str]) -> list[str]:
        return [slot for slot in self.slots if slot not in values]


class TemplateBook:
    """One answer template per intent, plus the question to ask for each slot."""

    def __init__(
        self,
        templates: dict[str, Template],
        slot_prompts: dict[str, str],
        messages: dict[str, str] | None = None,
        intent_names: dict[str, str] | None = None,
    ) -> None:
        self.templates = templates
        self.slot_prompts = slot_prompts
        # Fixed replies that belong to no intent, e.g. "out_of_scope", "low_confidence".
        self.messages = messages or {}
        # How intents are offered to customers in a clarifying question ("Track an order").
        self.intent_names = intent_names or {}

    def __len__(self) -> int:
        return len(self.templates)

    def get(self, intent: str) -> Template | None:
        return self.templates.get(intent)

    def prompt_for(self, slot: str) -> str:
        return self.slot_prompts[slot]

    @classmethod
    def load(cls, path: Path) -> TemplateBook:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise DataError(path, "file not found") from error
        except UnicodeDecodeError as error:
            raise DataError(path, f"not UTF-8 text: {error.reason}") from error
        except json.JSONDecodeError as error:
            raise DataError(path, f"invalid JSON: {error.msg}", error.lineno) from error
        if not isinstance(document, dict) or not isinstance(document.get("templates"), dict):
            raise DataError(path, 'expected an object with "templates" (and "slots")')
        prompts = document.get("slots", {})
        messages = document.get("messages", {})
        names = document.get("intent_names", {})
        if not all(_is_text_map(part) for part in (prompts, messages, names)):
            raise DataError(
                path, '"slots", "messages" and "intent_names" must be objects mapping names to text'
            )
        templates = {
            intent: _parse_template(path, intent, text, prompts)
            for intent, text in document["templates"].items()
        }
        return cls(templates, prompts, messages, names)


def _is_text_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(text, str) for text in value.values())


def _parse_template(path: Path, intent: str, text: object, prompts: dict) -> Template:
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, f"template for {intent!r} must be non-empty text")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as error:
        raise DataError(path, f"template for {intent!r}: {error}") from error
    for name in fields:
        if name not in SLOT_EXTRACTORS:
            known = sorted(SLOT_EXTRACTORS)
            raise DataError(
                path, f"template for {intent!r} uses unknown slot {{{name}}}; known: {known}"
            )
        if not isinstance(prompts.get(name), str):
            raise DataError(path, f'slot {name!r} needs a question to ask under "slots"')
    return Template(intent, text.strip(), tuple(dict.fromkeys(fields)))


def load_templates(settings: Settings) -> TemplateBook:
    return TemplateBook.load(settings.paths.data_dir / TEMPLATES_FILE)

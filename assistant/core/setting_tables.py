"""The settings' tables: staff accounts, API keys, components and support hours."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

# Names that fit in a TOML string and a log line without quoting.
ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"


class UserAccount(BaseModel):
    """A person who may sign in to the agent page (agent) or also the admin page (admin)."""

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=ACCOUNT_NAME_PATTERN)
    role: Literal["agent", "admin"]
    password_hash: str  # argon2id, from `assistant add-user`; never the password

    @field_validator("password_hash")
    @classmethod
    def _is_argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError(
                "password_hash must be an argon2 hash; create the entry with `assistant add-user`"
            )
        return value


class ApiKey(BaseModel):
    """A help-desk tool allowed to call `POST /api/suggest`, known by its key's SHA-256."""

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=ACCOUNT_NAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # from `assistant add-api-key`


class Components(BaseModel):
    """Which class plays each role, as "module:Class" or an entry point's name (see
    assistant/core/components.py); each needs `from_settings(settings, version, previous)`."""

    model_config = {"extra": "forbid", "frozen": True}

    intent_classifier: str = "assistant.intents.classifier:BertIntentClassifier"
    retriever: str = "assistant.retrieval.index:FaissRetriever"
    answer_writer: str = "assistant.generation.writer:Gpt2AnswerWriter"
    conversation_log: str = "assistant.storage.store:ConversationStore"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SupportHours(BaseModel):
    """When people answer handed-off chats: per weekday, "HH:MM-HH:MM" in `timezone`; a day
    not listed is closed. Outside these hours a customer handed off is asked for an email
    address instead of being left waiting."""

    model_config = {"extra": "forbid", "frozen": True}

    timezone: str = "UTC"
    days: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], str] = Field(
        default_factory=dict
    )

    @field_validator("timezone")
    @classmethod
    def _is_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            message = f"unknown time zone {value!r}; use a name like Europe/Paris"
            raise ValueError(message) from error
        return value

    @field_validator("days")
    @classmethod
    def _are_spans(cls, value: dict[str, str]) -> dict[str, str]:
        for span in value.values():
            _span(span)
        return value

    def open_at(self, moment: dt.datetime) -> bool:
        """Whether people answer at `moment` (an aware datetime)."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        span = self.days.get(WEEKDAYS[local.weekday()])
        if span is None:
            return False
        start, end = _span(span)
        return start <= local.time().replace(tzinfo=None) < end


def _span(text: str) -> tuple[dt.time, dt.time]:
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as error:
        raise ValueError(f"opening hours {text!r} must look like 08:00-20:00") from error
    if end <= start:
        raise ValueError(f"opening hours {text!r} end before they start")
    return start, end

"""The planted-PII corpus (tests/data/planted_pii.jsonl): messages written for this project,
each with the personal data planted in it (`planted`) and what must survive (`kept`), and how
a planted value is recognised in a redacted message or in anything the product stores or sends.

A planted number leaks when 6 of its digits in a row appear, whatever separates them; an
email (written with "@", "(at)", "[at]", " at " or fullwidth forms) leaks when its name part
appears, in any case."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from assistant.text.redaction import digits_of

CORPUS = Path(__file__).parent / "data" / "planted_pii.jsonl"
PUBLIC_CONTACTS = ["help@pebbleandpine.example", "+1 555 0142"]
WINDOW = 6  # digits in a row of a planted number that count as a leak
EXCERPT = 40  # characters either side of a leak in a report

# Numbers the product writes that are nobody's: masked before numbers are compared, so that
# a timestamp, an id, a version or an address cannot pass for a planted number by chance.
NOT_PERSONAL = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"  # ISO times
    r"|\d{8}-\d{6}-\d{6}"  # model versions (lifecycle/versions.py)
    r"|(?<![0-9A-Za-z])(?=[0-9a-f-]*[a-f])[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}"
    r"-?[0-9a-f]{12}(?:[0-9a-f]{32})?(?![0-9A-Za-z])"  # uuids, sha256 digests
    r"|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?(?![\d.])",  # IPv4 addresses
    re.ASCII,
)
# A number as people write one: digits, perhaps split by spaces, dashes, dots, slashes,
# brackets or a plus.
NUMBER = re.compile(r"\d(?:[ \-.()/+]{0,3}\d)*", re.ASCII)
DECIMAL = re.compile(r"\d+\.\d+", re.ASCII)  # a score or a latency in a trace, never a planted form


@dataclass(frozen=True)
class PlantedMessage:
    message: str
    planted: list[str]
    kept: list[str]


@dataclass(frozen=True)
class Leak:
    value: str  # the planted value
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.value!r} in {self.where}: ...{self.excerpt}..."


def load_planted_pii(path: Path = CORPUS) -> list[PlantedMessage]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [PlantedMessage(**json.loads(line)) for line in lines if line.strip()]


def is_email(planted: str) -> bool:
    """Written with "@" (fullwidth too), " at ", "(at)" or "[at]"."""
    return any(at in unicodedata.normalize("NFKC", planted) for at in ("@", " at ", "(at)", "[at]"))


def email_name(planted: str) -> str:
    """The part of a planted email that identifies someone: "jane.doe", "jane", "tom88"."""
    normal = unicodedata.normalize("NFKC", planted)
    return normal.split("@")[0].split(" ")[0].split("(")[0].lower()


def leaked_digits(planted: str, redacted: str, kept: list[str]) -> bool:
    """Whether 6 consecutive digits of `planted` are still in `redacted` (a partial leak
    such as "4111 1111" counts), once the kept order number and contacts are left out."""
    for keep in [*kept, *PUBLIC_CONTACTS]:
        redacted = redacted.replace(keep, " ")
    digits, rest = digits_of(planted), digits_of(unicodedata.normalize("NFKC", redacted))
    return any(digits[i : i + WINDOW] in rest for i in range(len(digits) - WINDOW + 1))


def leaked_name(planted: str, redacted: str) -> bool:
    return email_name(planted) in unicodedata.normalize("NFKC", redacted).lower()


def leaked(row: PlantedMessage, value: str, redacted: str) -> bool:
    """Whether `value`, planted in `row`, is still in `redacted`, the row's message redacted."""
    if is_email(value):
        return leaked_name(value, redacted)
    return leaked_digits(value, redacted, row.kept)


class LeakFinder:
    """Every planted value of a corpus, looked for in any text: a database cell, a log, a
    file, a response body. Unlike `leaked`, it looks number by number, not at every digit
    of the text together, so that a long text's unrelated digits cannot add up to a leak."""

    def __init__(self, corpus: list[PlantedMessage]) -> None:
        self.values = sorted({value for row in corpus for value in row.planted})
        kept = {value for row in corpus for value in row.kept} | set(PUBLIC_CONTACTS)
        self._kept = sorted(kept, key=len, reverse=True)
        self._kept_digits = {digits_of(value) for value in kept}
        self._names: dict[str, list[str]] = {}  # "jane.doe": each email it is the name of
        for value in filter(is_email, self.values):
            self._names.setdefault(email_name(value), []).append(value)
        self._windows: dict[str, str] = {}
        for value in self.values:
            digits = digits_of(value) if not is_email(value) else ""
            for start in range(len(digits) - WINDOW + 1):
                self._windows.setdefault(digits[start : start + WINDOW], value)
        self._exact: dict[bytes, str] = {}
        for value in self.values:
            self._exact[value.encode("utf-8")] = value
            if len(digits_of(value)) >= 8:  # long enough not to turn up by chance
                self._exact.setdefault(digits_of(value).encode(), value)

    def find(self, text: str, where: str) -> list[Leak]:
        """The planted values in `text`, each once, with an excerpt around it."""
        normal = unicodedata.normalize("NFKC", text)
        found: dict[str, Leak] = {}
        lower = normal.lower()
        for name, values in self._names.items():
            at = lower.find(name)
            for value in values if at >= 0 else []:
                found.setdefault(value, Leak(value, where, _excerpt(normal, at)))
        for keep in self._kept:
            normal = normal.replace(keep, " " * len(keep))
        normal = NOT_PERSONAL.sub(lambda match: " " * len(match.group()), normal)
        for number in NUMBER.finditer(normal):
            digits = digits_of(number.group())
            if DECIMAL.fullmatch(number.group()) or digits in self._kept_digits:
                continue
            for start in range(len(digits) - WINDOW + 1):
                value = self._windows.get(digits[start : start + WINDOW])
                if value is not None:
                    found.setdefault(value, Leak(value, where, _excerpt(normal, number.start())))
        return list(found.values())

    def find_in_bytes(self, data: bytes, where: str) -> list[Leak]:
        """For a file that is not text (an index, model weights): the planted values written
        as they were, and long numbers as digits only, as bytes."""
        leaks = []
        for needle, value in self._exact.items():
            at = data.find(needle)
            if at >= 0:
                excerpt = data[max(0, at - EXCERPT) : at + len(needle) + EXCERPT]
                leaks.append(Leak(value, where, repr(excerpt)))
        return leaks


def _excerpt(text: str, at: int) -> str:
    return text[max(0, at - EXCERPT) : at + EXCERPT].replace("\n", " ")

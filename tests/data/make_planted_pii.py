"""Writes tests/data/planted_pii.jsonl: customer messages written for this project, each with
personal data planted in it, and the planted values. Seeded, so the file is reproducible:

    python tests/data/make_planted_pii.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from stdnum import iban, luhn

OUT = Path(__file__).with_name("planted_pii.jsonl")
NAMES = ["jane.doe", "marco_rossi", "aiko.tanaka", "liam.obrien", "sofia-k", "priya.n", "tom88"]
DOMAINS = ["example.com", "mail.example.org", "example.co.uk", "post.example.net"]
TEMPLATES = [
    "Hi, my order {order} has not arrived yet. You can reach me at {pii}.",
    "I want a refund for order {order}; please reply to {pii} when it is done.",
    "The parcel for {order} says delivered but it is not here. Contact: {pii}",
    "Can you change the delivery address on {order}? My details are {pii}.",
    "I can't sign in to my account, it is registered under {pii}. Order {order}.",
    "Please cancel {order}. I paid with {pii} and want the money back.",
    "You charged me twice for {order}! The payment was from {pii}.",
    "Where is my refund for {order}? It should go to {pii}, thanks.",
    "My lamp from {order} came broken. Call or write: {pii} (or help@pebbleandpine.example).",
    "Hello, I called +1 555 0142 about {order} but no answer. My number is {pii}.",
]


def emails(rng: random.Random) -> list[str]:
    name, domain = rng.choice(NAMES), rng.choice(DOMAINS)
    host, tld = domain.rsplit(".", 1)
    spelled = name.replace(".", " dot ")
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in f"{name}@{domain}")
    return [
        f"{name}@{domain}",
        f"{spelled} at {host.replace('.', ' dot ')} dot {tld}",
        f"{name}(at){host.replace('.', '(dot)')}(dot){tld}",
        f"{name} [at] {host.replace('.', ' [dot] ')} [dot] {tld}",
        f"{name} @ {domain}",
        full_width,
        f"{name}\uff20{domain}",
    ]


def phones(rng: random.Random) -> list[str]:
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    area = rng.choice(["212", "415", "617", "305", "646"])
    return [
        f"({area}) 555-{d(4)}",
        f"{area}-555-{d(4)}",
        f"{area}.555.{d(4)}",
        f"+1 {area} 555 {d(4)}",
        f"1-800-555-{d(4)}",
        f"07700 900{d(3)}",
        f"+44 20 7946 {d(4)}",
        f"+49 30 {d(6)}",
        f"0049 30 {d(6)}",
        f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+61 412 {d(3)} {d(3)}",
        f"0412 {d(3)} {d(3)}",
        f"+353 87 {d(3)} {d(4)}",
        f"{area}555{d(4)}",
    ]


def cards(rng: random.Random) -> list[str]:
    found = []
    for prefix, length in (("4", 16), ("51", 16), ("37", 15), ("6011", 16), ("4", 19)):
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        number = body + luhn.calc_check_digit(body)
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        found += [" ".join(groups), "-".join(groups), ".".join(groups), number]
    typo = number[:15] + str((int(number[15]) + 1) % 10)
    found += [f"card {' '.join(typo[i : i + 4] for i in range(0, 16, 4))}"]
    return found


def ibans(rng: random.Random) -> list[str]:
    found = []
    for country, length in (("DE", 18), ("GB", 0), ("FR", 23), ("NL", 0), ("ES", 20), ("IT", 0)):
        if country == "GB":
            bban = "WEST" + "".join(rng.choice("0123456789") for _ in range(14))
        elif country == "NL":
            bban = "ABNA" + "".join(rng.choice("0123456789") for _ in range(10))
        elif country == "IT":
            bban = "X0542811101000000" + "".join(rng.choice("0123456789") for _ in range(6))
        else:
            bban = "".join(rng.choice("0123456789") for _ in range(length))
        number = country + iban.calc_check_digits(country + "00" + bban) + bban
        if iban.is_valid(number):
            found += [iban.format(number), number]
    return found


def main() -> None:
    rng = random.Random(2026)
    rows = []
    for index in range(240):
        kind = [emails, phones, cards, ibans][index % 4]
        values = kind(rng)
        planted = [values[(index // 4) % len(values)]]
        if index % 5 == 0:  # a second value of another kind
            other = [emails, phones, cards, ibans][(index + 1) % 4](rng)
            planted.append(rng.choice(other))
        order = rng.choice(["PP-{}", "PP{}", "order #{}", "order {}"]).format(
            rng.randint(100000, 999999)
        )
        message = rng.choice(TEMPLATES).format(order=order, pii=" and ".join(planted))
        rows.append({"message": message, "planted": planted, "kept": [order]})
    OUT.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )


if __name__ == "__main__":
    main()

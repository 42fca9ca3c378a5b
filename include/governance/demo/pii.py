"""Personal data injected into a day of the demo feed, with the truth of every value.

Values are built to be real by construction, independently of the detectors that must find
them: card numbers carry their own Luhn digit, IBANs their own mod-97 check digits, SSNs come
from the issued ranges, phone numbers from ranges set aside for fiction (Ofcom's 020 7946 0xxx,
the NANP's 555-01xx); e-mail addresses, IP addresses and keys have the shapes their owners give
them. The truth lies outside the landing area, beside the feed's own.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from governance.contracts import NationalIdSpec, PrivacySpec
from governance.demo.text import CLASSES, compose_review
from governance.demo.truth import atomic_write, truth_path

# The built-in entities and the demo contract's national id, with the sentence each value is
# written into (appended to a review).
SENTENCES: dict[str, str] = {
    "email": "You can reach me at {} for questions.",
    "phone": "Call me on {} if the seller asks.",
    "credit_card": "They charged my card {} twice.",
    "iban": "Please refund to {} this week.",
    "ip_address": "The shop logged me in from {} again.",
    "secret": "Their support page even showed the token {} to everyone.",
    "us_ssn": "They asked for my SSN {} at checkout.",
}
PII_SUFFIX = ".pii.json"
# Every entity the generators make, masked: what the tests and the bench scan for.
US_SSN = NationalIdSpec(name="us_ssn", pattern=r"\b\d{3}-\d{2}-\d{4}\b", validator="us.ssn")
SCAN_EVERYTHING = PrivacySpec(
    email="mask",
    phone="mask",
    credit_card="mask",
    iban="mask",
    ip_address="mask",
    secret="mask",
    phone_regions=["US", "GB"],
    national_ids=[US_SSN],
)


@dataclass(frozen=True)
class InjectedValue:
    item_id: str
    entity: str
    value: str


def luhn_digit(payload: str) -> str:
    """The check digit that makes ``payload`` + digit pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # doubled: it will sit at an odd position from the right
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: the BBAN, country and 00 as a number, mod 97."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{98 - number % 97:02d}"


def _grouped(value: str, size: int = 4, separator: str = " ") -> str:
    return separator.join(value[i : i + size] for i in range(0, len(value), size))


def _email(rng: random.Random) -> str:
    first = rng.choice(("anna", "li", "omar", "sofia", "raj", "emma", "jon", "maria"))
    last = rng.choice(("smith", "garcia", "chen", "novak", "okafor", "silva"))
    domain = rng.choice(("example.com", "mail.example.org", "example.co.uk"))
    return f"{first}.{last}{rng.randint(1, 999)}@{domain}"


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"+44 20 7946 0{rng.randint(0, 999):03d}"
    return f"({rng.choice((212, 415, 617, 303))}) 555-01{rng.randint(0, 99):02d}"


def _card(rng: random.Random) -> str:
    payload = "4" + "".join(rng.choice(string.digits) for _ in range(14))
    return _grouped(payload + luhn_digit(payload), separator=rng.choice((" ", "-")))


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(18))  # German: bank 8 + account 10
    return _grouped(f"DE{iban_check_digits('DE', bban)}{bban}")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        network = rng.choice(("203.0.113", "198.51.100"))  # the documentation networks
        return f"{network}.{rng.randint(1, 254)}"
    return f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"


def _secret(rng: random.Random) -> str:
    kind = rng.choice(("aws", "github", "random"))
    if kind == "aws":
        return "AKIA" + "".join(
            rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)
        )
    if kind == "github":
        return "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


MAKERS: dict[str, Callable[[random.Random], str]] = {
    "email": _email,
    "phone": _phone,
    "credit_card": _card,
    "iban": _iban,
    "ip_address": _ip,
    "secret": _secret,
    "us_ssn": _ssn,
}


def labelled_corpus(
    rows: int, rate: float, seed: int = 0
) -> tuple[list[str], set[tuple[int, str]]]:
    """Demo reviews, ``rate`` of them ending with a sentence that holds one value, and the
    (row, entity) pairs injected."""
    rng = random.Random(seed)
    reviews = [compose_review(rng, rng.choice(CLASSES)).text for _ in range(min(rows, 20_000))]
    texts, truth = [], set()
    entities = list(MAKERS)
    for row in range(rows):
        text = reviews[row % len(reviews)]
        if rng.random() < rate:
            entity = rng.choice(entities)
            text = f"{text} {SENTENCES[entity].format(MAKERS[entity](rng))}"
            truth.add((row, entity))
        texts.append(text)
    return texts, truth


def _text_items(lines: list[bytes]) -> dict[str, str]:
    """item id -> text of the lines that are JSON objects with both."""
    found: dict[str, str] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            item_id, text = record.get("item_id"), record.get("text")
            if isinstance(item_id, str) and isinstance(text, str):
                found.setdefault(item_id, text)
    return found


def _rewritten(line: bytes, texts: dict[str, str]) -> bytes:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or record.get("item_id") not in texts:
        return line
    if not isinstance(record.get("text"), str):
        return line
    return json.dumps({**record, "text": texts[record["item_id"]]}).encode("utf-8")


def inject_pii(
    landing_day: Path,
    truth_root: Path,
    dataset: str,
    rate: float,
    seed: int = 0,
    min_length: int = 20,
    max_length: int = 500,
) -> list[InjectedValue]:
    """Append a sentence holding one value to ``rate`` of the day's items (every vote line of
    an item gets the same text, within the contract's length bounds) and record the truth."""
    rng = random.Random(seed)
    files = sorted(p for p in landing_day.glob("*.jsonl"))
    contents = {path: path.read_bytes().splitlines() for path in files}
    texts: dict[str, str] = {}
    for lines in contents.values():
        for item_id, text in _text_items(lines).items():
            texts.setdefault(item_id, text)
    eligible = sorted(i for i, t in texts.items() if len(t.strip()) >= min_length)
    chosen = rng.sample(eligible, min(len(eligible), round(rate * len(eligible))))
    entities = list(MAKERS)
    injected: list[InjectedValue] = []
    changed: dict[str, str] = {}
    for number, item_id in enumerate(sorted(chosen)):
        entity = entities[number % len(entities)]
        value = MAKERS[entity](rng)
        text = f"{texts[item_id]} {SENTENCES[entity].format(value)}"
        if len(text) <= max_length:
            changed[item_id] = text
            injected.append(InjectedValue(item_id, entity, value))
    for path, lines in contents.items():
        atomic_write(path, b"\n".join(_rewritten(line, changed) for line in lines) + b"\n")
    where = pii_truth_path(truth_root, dataset, landing_day.name)
    where.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(where, (json.dumps([asdict(v) for v in injected], indent=1) + "\n").encode())
    return injected


def pii_truth_path(truth_root: Path, dataset: str, day: str) -> Path:
    return truth_path(truth_root, dataset, day).with_suffix(PII_SUFFIX)


def load_pii_truth(truth_root: Path, dataset: str, day: str) -> list[InjectedValue]:
    raw = json.loads(pii_truth_path(truth_root, dataset, day).read_text(encoding="utf-8"))
    return [InjectedValue(**record) for record in raw]


def precision_recall(
    injected: list[InjectedValue], found: set[tuple[str, str]], scanned: set[str]
) -> dict[str, float | int]:
    """(item, entity) pairs the scan found against those injected into items it scanned."""
    truth = {(v.item_id, v.entity) for v in injected if v.item_id in scanned}
    hits = len(truth & found)
    return {
        "injected": len(truth),
        "found": len(found),
        "true_positives": hits,
        "precision": hits / len(found) if found else 1.0,
        "recall": hits / len(truth) if truth else 1.0,
    }

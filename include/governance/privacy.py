"""Personal data and secrets in text: find them, then report, mask or quarantine per entity.

Each entity has a detector: a candidate pattern, and a validator from a maintained library where
one exists (phone numbers by libphonenumber's ``phonenumbers``, card numbers by the Luhn check,
IBANs by ``python-stdnum``'s country formats and mod-97 check, national ids by the python-stdnum
module the contract names, IP addresses by the standard ``ipaddress``). Secrets are known key
prefixes (AWS, GitHub, Slack, Stripe, Google, OpenAI-style ``sk-``, JWTs, private-key blocks) and
high-entropy tokens.

Speed comes from the column, not the row: each detector's prefilter runs over the whole column at
once and only rows it selects are parsed in Python, so a clean night costs a few vectorised
scans. A finding carries the entity, its span and the action, never the value: nothing this
module returns can print what it found.
"""

from __future__ import annotations

import importlib
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from governance.contracts import PrivacySpec

Validator = Callable[[str], bool]
REPORT, MASK, QUARANTINE = "report", "mask", "quarantine"
MASKED = (MASK, QUARANTINE)  # actions whose values never leave the scan
# Which detector wins where two spans overlap: the more specific first.
PRIORITY = ("secret", "email", "iban", "credit_card", "national_id", "ip_address", "phone")


@dataclass(frozen=True)
class Finding:
    """One entity found in one text: where it is and what the contract does with it."""

    row: int  # position in the scanned column
    entity: str
    start: int
    end: int
    action: str


def placeholder(entity: str) -> str:
    """What a masked value becomes: the same for every value of a kind, so masked copies of
    one text stay exact duplicates and a model still sees that something was there."""
    return f"<{entity.upper()}>"


# --- validators -------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """The Luhn check (python-stdnum's) on the digits of ``number``."""
    from stdnum import luhn

    return luhn.is_valid(_digits(number))


# Issuer prefixes and lengths of the card networks (ISO/IEC 7812 ranges in use).
_CARD_NETWORKS = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa 13, 16, 19
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|3(?:0[0-5]|[68]\d)\d{11,16}"  # Diners Club
    r"|6(?:011|5\d{2}|4[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17})$"  # UnionPay
)


def card_number(candidate: str) -> bool:
    digits = _digits(candidate)
    return bool(_CARD_NETWORKS.match(digits)) and luhn_valid(digits)


def iban_valid(candidate: str) -> bool:
    from stdnum import iban

    return bool(iban.is_valid(candidate))


def ip_address_valid(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    # "0.0.0.0", "::" and the like are placeholders, not anybody's address.
    return not address.is_unspecified


def shannon_entropy(token: str) -> float:
    """Bits per character of the token's own character distribution."""
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def stdnum_validator(module: str) -> Validator:
    """``is_valid`` of a python-stdnum module named like ``us.ssn`` or ``nl.bsn``."""
    try:
        found = importlib.import_module(f"stdnum.{module}")
    except ImportError as exc:
        raise LookupError(f"python-stdnum has no module {module!r}") from exc
    is_valid = getattr(found, "is_valid", None)
    if not callable(is_valid):
        raise LookupError(f"stdnum.{module} has no is_valid()")
    return lambda text: bool(is_valid(text))


# --- detectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detector:
    """One entity's candidate pattern, the cheap column-wide prefilter that selects rows worth
    parsing, and the validator each candidate must pass."""

    entity: str
    prefilter: str
    pattern: re.Pattern[str] | None = None
    validate: Validator | None = None
    # For entities that pattern-match badly (phone numbers): yields spans of a text itself.
    finder: Callable[[str], Iterator[tuple[int, int]]] | None = None

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        assert self.pattern is not None
        for match in self.pattern.finditer(text):
            if self.validate is None or self.validate(match.group()):
                yield match.span()


_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![:\w])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?![:\w])")
_KEYS = re.compile(
    "|".join(
        (
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
            r"\bxox[abposr]-[A-Za-z0-9-]{10,250}\b",  # Slack
            r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,247}\b",  # Stripe
            r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
            r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b",  # OpenAI/Anthropic-style
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",  # JWT
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        )
    )
)
# What the secret detector's prefilter looks for besides long tokens: every known format starts so.
KEY_PREFIXES = (
    r"-----BEGIN|\b(?:AKIA|ASIA|ABIA|ACCA|AIza|gh[pousr]_|github_pat_|xox[abposr]-|[rs]k_|sk-|eyJ)"
)
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{12,}(?![A-Za-z0-9+/_=-])")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def iban_spans(text: str) -> Iterator[tuple[int, int]]:
    """IBANs, trimmed at a group boundary until one validates: a printed IBAN is followed by
    words the candidate pattern may take in (``DE89 3704 0044 0532 0130 00 AND``)."""
    for match in _IBAN.finditer(text):
        candidate = match.group()
        while len(candidate.replace(" ", "")) >= 15:
            if iban_valid(candidate):
                yield match.start(), match.start() + len(candidate)
                break
            cut = candidate.rfind(" ")
            if cut < 0:
                break
            candidate = candidate[:cut]


def ip_spans(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            if ip_address_valid(match.group()):
                yield match.span()


# Letters in runs that read like words (4+ lowercase, 5+ capitals): less than this share of a
# random token's characters (the 99th percentile of random base62/base64 tokens of 32+
# characters is 0.47); text squashed without spaces ("150p/MsgrcvdHG/Suite342/...") has more.
MAX_WORDY_SHARE = 0.5
_WORDY = re.compile(r"[a-z]{4,}|[A-Z]{5,}")


def wordy_share(token: str) -> float:
    return sum(len(run) for run in _WORDY.findall(token)) / len(token)


def secret_spans(min_length: int, min_entropy: float) -> Callable[[str], Iterator[tuple[int, int]]]:
    """Known key formats, then tokens random enough to be keys: at least ``min_length``
    characters mixing letters and digits, with ``min_entropy`` bits per character (hex,
    whose alphabet caps it at 4 bits, needs three quarters of that) and few word-like runs."""

    def find(text: str) -> Iterator[tuple[int, int]]:
        yield from (match.span() for match in _KEYS.finditer(text))
        for match in _TOKEN.finditer(text):
            token = match.group()
            if len(token) < min_length:
                continue
            if not (any(c.isdigit() for c in token) and any(c.isalpha() for c in token)):
                continue
            bound = min_entropy * 0.75 if _HEX.match(token) else min_entropy
            if shannon_entropy(token) >= bound and wordy_share(token) < MAX_WORDY_SHARE:
                yield match.span()

    return find


PHONE_MIN_DIGITS = 7
_PHONE_GAP = re.compile(r"\d\D{4,}\d")


def phone_spans(regions: Sequence[str]) -> Callable[[str], Iterator[tuple[int, int]]]:
    """Numbers libphonenumber finds valid, read as numbers of each region in turn (one written
    with +country is read whatever the region), with at least seven digits and no more than
    three other characters between two of them: shorter "numbers" in prose are years, prices
    and quantities, and the bound is what the column prefilter looks for."""

    def find(text: str) -> Iterator[tuple[int, int]]:
        import phonenumbers

        for region in regions:
            for match in phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.VALID
            ):
                raw = match.raw_string
                if len(_digits(raw)) >= PHONE_MIN_DIGITS and not _PHONE_GAP.search(raw):
                    yield match.start, match.end

    return find


def detectors(spec: PrivacySpec) -> list[Detector]:
    """The contract's detectors (those not ``off``), in ``PRIORITY`` order."""
    built_in = [
        Detector(
            "secret",
            rf"[A-Za-z0-9+/_=-]{{{min(spec.min_secret_length, 20)}}}|{KEY_PREFIXES}",
            finder=secret_spans(spec.min_secret_length, spec.min_secret_entropy),
        ),
        Detector("email", r"@[A-Za-z0-9-]+\.", pattern=_EMAIL),
        Detector("iban", r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}", finder=iban_spans),
        Detector("credit_card", r"\d(?:[ -]?\d){12}", pattern=_CARD, validate=card_number),
        Detector(
            "ip_address",
            r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]*:[0-9A-Fa-f]*:",
            finder=ip_spans,
        ),
        Detector("phone", r"\d(?:\D{0,3}\d){6}", finder=phone_spans(spec.phone_regions)),
    ]
    national = [
        Detector(
            ident.name,
            ident.pattern,
            pattern=re.compile(ident.pattern),
            validate=stdnum_validator(ident.validator) if ident.validator else None,
        )
        for ident in spec.national_ids
    ]
    # National ids rank before IP addresses and phone numbers, whose looser patterns also read
    # a "078-05-1120"; sorted() keeps the contract's order among them.
    return sorted(
        (d for d in built_in + national if spec.action(d.entity) is not None),
        key=lambda d: PRIORITY.index(d.entity if d.entity in PRIORITY else "national_id"),
    )


# --- scanning ---------------------------------------------------------------------------------


def _blanked(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with the spans replaced by as many spaces: positions stay where they were."""
    chars = list(text)
    for start, end, _ in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def entities_in(text: str, chosen: Sequence[Detector]) -> list[tuple[int, int, str]]:
    """The spans of one text, detector by detector in the order given, each run on the text
    with what the earlier ones found blanked out: a card number is not read again as a phone
    number, and the costly phone parser sees only what is left. ``chosen`` holds the
    detectors whose prefilter matched the text."""
    spans: list[tuple[int, int, str]] = []
    for detector in chosen:
        seen = _blanked(text, spans) if spans else text
        if spans and not re.search(detector.prefilter, seen):
            continue
        # one detector may report a span twice or overlapping (a number read in two regions)
        for start, end in sorted(set(detector.spans(seen)), key=lambda s: (s[0], s[0] - s[1])):
            if all(end <= s or start >= e for s, e, _ in spans):
                spans.append((start, end, detector.entity))
    return sorted(spans)


@dataclass(frozen=True)
class Scan:
    """What a column holds: every finding, in row then position order."""

    findings: tuple[Finding, ...]
    rows: int

    @cached_property
    def rows_with_findings(self) -> int:
        return len({f.row for f in self.findings})

    def by_row(self) -> dict[int, list[Finding]]:
        grouped: dict[int, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.row, []).append(finding)
        return grouped

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(f.entity for f in self.findings).items()))

    def counts_by_action(self) -> dict[str, int]:
        return dict(sorted(Counter(f.action for f in self.findings).items()))

    def quarantined_rows(self) -> dict[int, list[str]]:
        """Rows that hold an entity the contract quarantines, with those entities."""
        rows: dict[int, list[str]] = {}
        for finding in self.findings:
            if finding.action == QUARANTINE and finding.entity not in rows.get(finding.row, []):
                rows.setdefault(finding.row, []).append(finding.entity)
        return rows

    def table(self, ids: Sequence[Any]) -> pd.DataFrame:
        """One row per finding, keyed by ``ids`` (aligned with the scanned column): no value."""
        return pd.DataFrame(
            {
                "item_id": pd.array([ids[f.row] for f in self.findings], dtype="str"),
                "entity": pd.array([f.entity for f in self.findings], dtype="str"),
                "action": pd.array([f.action for f in self.findings], dtype="str"),
                "start": pd.array([f.start for f in self.findings], dtype="int64"),
                "end": pd.array([f.end for f in self.findings], dtype="int64"),
            }
        )


def scan(texts: pd.Series, spec: PrivacySpec) -> Scan:
    """Every entity of the contract in ``texts`` (missing values hold none): each detector's
    prefilter over the whole column, then ``entities_in`` on the rows some prefilter matched."""
    values = texts.reset_index(drop=True)
    present = values.notna().to_numpy()
    strings = values.astype("str")
    chosen = detectors(spec)
    matched = [present & strings.str.contains(d.prefilter, regex=True).to_numpy() for d in chosen]
    findings = []
    for row in np.flatnonzero(np.logical_or.reduce(matched)) if matched else []:
        candidates = [d for d, mask in zip(chosen, matched, strict=True) if mask[row]]
        for start, end, entity in entities_in(str(values.iat[int(row)]), candidates):
            findings.append(Finding(int(row), entity, start, end, spec.action(entity) or REPORT))
    return Scan(tuple(findings), len(values))


def masked(text: str, findings: Iterable[Finding], actions: Iterable[str] = MASKED) -> str:
    """``text`` with the spans of ``findings`` whose action is in ``actions`` replaced by their
    placeholders (spans do not overlap)."""
    chosen = set(actions)
    pieces, last = [], 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.action not in chosen:
            continue
        pieces += [text[last : finding.start], placeholder(finding.entity)]
        last = finding.end
    return "".join(pieces) + text[last:]


def masked_column(texts: pd.Series, result: Scan, actions: Iterable[str] = MASKED) -> pd.Series:
    """``texts`` with every finding of ``result`` whose action is in ``actions`` masked."""
    out = texts.reset_index(drop=True).copy()
    chosen = tuple(actions)
    for row, row_findings in result.by_row().items():
        out.iat[row] = masked(str(out.iat[row]), row_findings, chosen)
    out.index = texts.index
    return out

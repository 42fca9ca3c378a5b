"""LabelCanon: class names, case, aliases, and an exact record of what it changed."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from governance.contracts import PROJECT_ROOT, LabelSpec, load_contract
from governance.labels import LabelCanon
from tests.conftest import SENTI4SD_CSV


def spec(**overrides) -> LabelSpec:
    settings = {"classes": ["positive", "neutral", "negative"], "aliases": {"Postive": "positive"}}
    return LabelSpec.model_validate(settings | overrides)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("positive", "positive"),
        ("Positive", "positive"),
        ("POSITIVE", "positive"),
        ("  neutral \t", "neutral"),
        ("postive", "positive"),  # alias keys compare casefolded
        ("POSTIVE", "positive"),
        ("positiv", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_canonical_spellings(raw, expected):
    assert LabelCanon(spec()).canonical(raw) == expected


def test_case_sensitive_contract_keeps_class_case_but_aliases_stay_casefolded():
    canon = LabelCanon(spec(case_insensitive=False))
    assert canon.canonical("positive") == "positive"
    assert canon.canonical("Positive") is None
    assert canon.canonical("POSTIVE") == "positive"


def test_report_counts_changed_and_unknown_spellings_exactly():
    spellings = ["positive", "Positive", "Positive", "postive", "xyz", "xyz", "", None, " neutral"]
    canon = LabelCanon(spec())
    for raw in spellings:
        canon.canonical(raw)
    canon.canonical("Positive", count=5)
    assert canon.report() == {
        "changed": {
            " neutral": {"canonical": "neutral", "count": 1},
            "Positive": {"canonical": "positive", "count": 7},
            "postive": {"canonical": "positive", "count": 1},
        },
        "unknown": {"xyz": 2},
    }


def test_lookup_counts_nothing():
    canon = LabelCanon(spec())
    assert canon.lookup("Positive") == "positive"
    assert canon.lookup("nope") is None
    assert canon.report() == {"changed": {}, "unknown": {}}


def test_senti4sd_contract_understands_every_rater_spelling():
    """Every non-empty r1..r3 spelling maps onto the class its lower-cased, typo-free form names."""
    contract = load_contract(PROJECT_ROOT / "include" / "contracts" / "senti4sd_gold.yaml")
    canon = LabelCanon(contract.labels)
    with SENTI4SD_CSV.open(encoding="utf-8", newline="") as handle:
        spellings = Counter(
            row[column] for row in csv.DictReader(handle) for column in ("r1", "r2", "r3")
        )
    spellings.pop("", None)
    for raw, count in spellings.items():
        canon.canonical(raw, count=count)
    assert canon.report()["unknown"] == {}
    # Independent rule: the dirty spellings differ from their class after the third letter.
    by_prefix = {"pos": "positive", "poi": "positive", "neu": "neutral", "net": "neutral"}
    by_prefix["neg"] = "negative"
    for raw in spellings:
        assert canon.lookup(raw) == by_prefix[raw.casefold()[:3]], raw

"""The privacy scan's detectors and masking on values with known answers, the column-wide
prefilter against scanning every row, and the demo's value generators against python-stdnum."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from stdnum import iban, luhn

from governance import privacy as P
from governance.contracts import (
    Contract,
    ContractError,
    PrivacySpec,
    load_contract,
)
from governance.demo.pii import MAKERS, SCAN_EVERYTHING, iban_check_digits, luhn_digit
from tests.conftest import SMS_SPAM_TSV

EVERYTHING = SCAN_EVERYTHING.model_copy(
    update={"credit_card": "quarantine", "phone_regions": ["US", "GB", "DE", "FR", "IN"]}
)

# (text, the entities in it in order, what masking leaves)
KNOWN = [
    ("write to jane.doe@example.co.uk today", ["email"], "write to <EMAIL> today"),
    ("not an address: a@b, @handle, x@localhost", [], None),
    ("call +44 20 7946 0958 or (415) 555-2671", ["phone", "phone"], "call <PHONE> or <PHONE>"),
    ("order 12345678 shipped 2026-11-03", [], None),
    ("card 4111 1111 1111 1111 exp 12/27", ["credit_card"], "card <CREDIT_CARD> exp 12/27"),
    ("a mistyped 4111 1111 1111 1112 fails Luhn", [], None),
    ("amex 3782-822463-10005 ok", ["credit_card"], "amex <CREDIT_CARD> ok"),
    ("pay GB82 WEST 1234 5698 7654 32 NOW", ["iban"], "pay <IBAN> NOW"),
    ("pay DE89 3704 0044 0532 0130 00", ["iban"], "pay <IBAN>"),
    ("a bad check digit DE88 3704 0044 0532 0130 00", [], None),
    ("from 192.168.1.10 and 2001:db8::1", ["ip_address"] * 2, "from <IP_ADDRESS> and <IP_ADDRESS>"),
    ("version 1.2.3.4.5, 999.1.1.1, 12:30:45, 0.0.0.0", [], None),
    ("key AKIAIOSFODNN7EXAMPLE here", ["secret"], "key <SECRET> here"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", ["secret"], "token <SECRET>"),
    ("random x9Kq2LmZ8vR4tY7wP1nB5cX3Jd6Hs0Ge token", ["secret"], "random <SECRET> token"),
    ("shorter than 32: x9Kq2LmZ8vR4tY7wP1nB5cX3", [], None),
    ("words squashed: com1win150ppmx3age16subscription", [], None),
    (
        "a hex digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ["secret"],
        "a hex digest <SECRET>",
    ),
    ("-----BEGIN RSA PRIVATE KEY-----", ["secret"], "<SECRET>"),
    ("a long ordinary word: internationalisation", [], None),
    ("ssn 536-22-1234 on file", ["us_ssn"], "ssn <US_SSN> on file"),
    ("ssn 666-12-3456 is never issued", [], None),
]


@pytest.mark.parametrize(("text", "entities", "masked"), KNOWN)
def test_each_detector_finds_real_values_and_refuses_lookalikes(
    text: str, entities: list[str], masked: str | None
) -> None:
    found = P.scan(pd.Series([text]), EVERYTHING)
    assert [f.entity for f in found.findings] == entities
    assert P.masked_column(pd.Series([text]), found).iloc[0] == (masked or text)


def test_report_counts_without_changing_and_off_does_not_look() -> None:
    texts = pd.Series(["mail jane@example.com", None, "call +44 20 7946 0958"])
    reported = P.scan(texts, PrivacySpec())
    assert reported.counts() == {"email": 1, "phone": 1}
    assert reported.counts_by_action() == {"report": 2}
    assert P.masked_column(texts, reported).equals(texts)
    silent = P.scan(texts, PrivacySpec(email="off", phone="off"))
    assert silent.findings == () and silent.rows == 3


def test_the_contract_sets_how_long_and_random_an_unnamed_token_must_be() -> None:
    text = pd.Series(["token x9Kq2LmZ8vR4tY7wP1nB5cX3 here"])
    assert P.scan(text, PrivacySpec()).findings == ()
    found = P.scan(text, PrivacySpec(min_secret_length=20))
    assert [f.entity for f in found.findings] == ["secret"]
    assert P.scan(text, PrivacySpec(min_secret_length=20, min_secret_entropy=5.0)).findings == ()


def test_overlapping_spans_go_to_the_more_specific_entity() -> None:
    # A card number also reads as a phone number, and an e-mail address holds a domain.
    text = "card 4111 1111 1111 1111 mail bob@example.com"
    found = P.scan(pd.Series([text]), EVERYTHING)
    assert [(f.entity, text[f.start : f.end]) for f in found.findings] == [
        ("credit_card", "4111 1111 1111 1111"),
        ("email", "bob@example.com"),
    ]
    assert found.quarantined_rows() == {0: ["credit_card"]}
    table = found.table(["item-1"])
    assert list(table.columns) == ["item_id", "entity", "action", "start", "end"]
    assert "4111" not in table.to_string()


def test_the_column_prefilter_loses_nothing_on_real_messages() -> None:
    """The vectorised scan (pandas' prefilters over the column) finds what the row-by-row scan
    of every message finds, on the SMS Spam Collection, whose spam is full of phone numbers."""
    texts = pd.read_csv(SMS_SPAM_TSV, sep="\t", header=None, names=["label", "text"])["text"]
    found = P.scan(texts, EVERYTHING)
    chosen = P.detectors(EVERYTHING)
    reference = [
        (row, start, end, entity)
        for row, text in enumerate(texts)
        for start, end, entity in P.entities_in(
            text, [d for d in chosen if re.search(d.prefilter, text)]
        )
    ]
    assert [(f.row, f.start, f.end, f.entity) for f in found.findings] == reference
    assert found.counts()["phone"] > 300  # premium-rate and mobile numbers of the spam
    # the README's figure: text squashed without spaces that reads as a random token
    assert found.counts()["secret"] == 4


def test_generated_values_pass_the_libraries_checks() -> None:
    rng = random.Random(0)
    for _ in range(200):
        payload = "".join(rng.choice("0123456789") for _ in range(15))
        assert luhn.is_valid(payload + luhn_digit(payload))
        bban = "".join(rng.choice("0123456789") for _ in range(18))
        assert iban.is_valid(f"DE{iban_check_digits('DE', bban)}{bban}")
    for entity, make in MAKERS.items():
        for _ in range(20):
            value = make(rng)
            found = P.scan(pd.Series([f"see {value} ."]), EVERYTHING)
            assert [f.entity for f in found.findings] == [entity], value


def test_the_contract_refuses_unknown_validators_and_shadowing_names(tmp_path: Path) -> None:
    def contract_with(**sections: Any) -> Contract:
        path = tmp_path / "reviews.yaml"
        minimal = {
            "name": "reviews",
            "source": {"format": "csv"},
            "text": {"column": "text"},
            "labels": {"column": "label", "classes": ["a", "b"]},
        }
        path.write_text(yaml.safe_dump({**minimal, **sections}))
        return load_contract(path)

    with pytest.raises(ContractError, match=r"python-stdnum has no module 'xx\.nothing'"):
        contract_with(
            privacy={"national_ids": [{"name": "x", "pattern": r"\d+", "validator": "xx.nothing"}]}
        )
    with pytest.raises(ContractError, match=r"repeat or shadow a built-in"):
        contract_with(privacy={"national_ids": [{"name": "email", "pattern": r"\d+"}]})
    with pytest.raises(ContractError, match="not a valid regular expression"):
        contract_with(privacy={"national_ids": [{"name": "x", "pattern": "("}]})
    assert contract_with(privacy={"email": "mask"}).privacy.policy()["email"] == "mask"

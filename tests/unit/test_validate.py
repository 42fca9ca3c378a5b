"""validate: pandera schema from a contract; one quarantine row per failing record, all reasons."""

from __future__ import annotations

import json
import random
import re

import pandas as pd
import pytest

from governance import frames
from governance.contracts import Contract
from governance.tables import str_series
from governance.validate import build_schema, validate_records

CODE_PATTERN = r"[A-Z]{2}\d"
CONTRACT = Contract.model_validate(
    {
        "name": "reviews",
        "source": {"format": "csv"},
        "id": {"column": "id"},
        "text": {"column": "text", "min_length": 2, "max_length": 10},
        "labels": {"column": "label", "classes": ["good", "bad"]},
        "checks": [
            {"column": "lang", "required": True, "allowed": ["en", "fr"]},
            {"column": "code", "pattern": CODE_PATTERN, "min_length": 3, "max_length": 3},
            {"column": "text", "pattern": "[a-z]"},
        ],
    }
)
COLUMNS = ["id", "text", "label", "lang", "code"]


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """Records as ingest hands them over: "str" columns plus provenance."""
    data = {name: str_series([row.get(name) for row in rows]) for name in COLUMNS}
    data[frames.SOURCE_FILE] = str_series(["f.csv"] * len(rows))
    data[frames.SOURCE_LINE] = pd.Series(range(1, len(rows) + 1), dtype="int64")
    return pd.DataFrame(data)


def expected_reasons(row: dict) -> list[str]:
    """The contract's rules written out by hand, in schema order (text, id, label, lang, code)."""
    reasons = []
    text = row.get("text")
    if text is None:
        reasons.append("text: missing")
    else:
        if not 2 <= len(text) <= 10:
            reasons.append("text: length outside 2..10")
        if not re.match("[a-z]", text):
            reasons.append("text: does not match '[a-z]'")
    if row.get("id") is None:
        reasons.append("id: missing")
    label = row.get("label")
    if label is None:
        reasons.append("label: missing")
    elif label not in ("good", "bad"):
        reasons.append("label: not in classes [good, bad]")
    lang = row.get("lang")
    if lang is None:
        reasons.append("lang: missing")
    elif lang not in ("en", "fr"):
        reasons.append("lang: not in allowed [en, fr]")
    code = row.get("code")
    if code is not None:
        if len(code) != 3:
            reasons.append("code: length outside 3..3")
        if not re.match(CODE_PATTERN, code):
            reasons.append(f"code: does not match '{CODE_PATTERN}'")
    return reasons


def test_record_failing_several_checks_lists_all_of_them_in_schema_order():
    records = records_frame(
        [
            {"id": "a", "text": "fine text", "label": "good", "lang": "en", "code": "AB1"},
            {"id": None, "text": "X", "label": "ugly", "lang": None, "code": "abcd"},
        ]
    )
    result = validate_records(CONTRACT, records)
    assert result.quarantine[frames.REASONS].tolist() == [
        "text: length outside 2..10; text: does not match '[a-z]'; id: missing; "
        "label: not in classes [good, bad]; lang: missing; code: length outside 3..3; "
        "code: does not match '[A-Z]{2}\\d'"
    ]
    row = result.quarantine.iloc[0]
    assert (row[frames.SOURCE_LINE], row[frames.STAGE], row[frames.N_SOURCE_ROWS]) == (
        2,
        "validate",
        1,
    )
    assert json.loads(row[frames.RAW])["label"] == "ugly"
    pd.testing.assert_frame_equal(result.valid, records.iloc[[0]])


def random_row(rng: random.Random) -> dict:
    def pick(*choices):
        return rng.choice(choices)

    return {
        "id": pick("i1", "i2", None),
        "text": pick(None, "a", "ok text", "Upper case", "a" * 11, "exactly10!", "é accent"),
        "label": pick("good", "bad", "Good", "meh", None),
        "lang": pick("en", "fr", "de", None),
        "code": pick(None, "AB1", "ab1", "AB12", "A1", "ZZ9"),
    }


def test_matches_a_hand_written_reference_on_random_records():
    rng = random.Random(7)
    rows = [random_row(rng) for _ in range(3000)]
    records = records_frame(rows)
    result = validate_records(CONTRACT, records)
    expected = {
        line: "; ".join(r) for line, row in enumerate(rows, 1) if (r := expected_reasons(row))
    }
    got = dict(
        zip(
            result.quarantine[frames.SOURCE_LINE].tolist(),
            result.quarantine[frames.REASONS].tolist(),
            strict=True,
        )
    )
    assert got == expected
    assert 0 < len(expected) < len(rows)
    valid_lines = [line for line in range(1, len(rows) + 1) if line not in expected]
    assert result.valid[frames.SOURCE_LINE].tolist() == valid_lines
    pd.testing.assert_frame_equal(result.valid, records.loc[result.valid.index])
    item_ids = result.quarantine[frames.ITEM_ID].astype(object)
    assert item_ids.where(item_ids.notna(), None).tolist() == [rows[line - 1]["id"] for line in got]


def test_quarantine_preview_shows_the_spelling_as_read():
    records = records_frame([{"id": "a", "text": "fine", "label": "meh", "lang": "en"}])
    raw = records.copy()
    raw["label"] = str_series([" Meh "])
    result = validate_records(CONTRACT, records, raw)
    assert json.loads(result.quarantine[frames.RAW].iloc[0]) == {
        "text": "fine",
        "id": "a",
        "label": " Meh ",
        "lang": "en",
        "code": None,
    }


def test_all_valid_gives_an_empty_typed_quarantine():
    records = records_frame([{"id": "a", "text": "fine", "label": "bad", "lang": "fr"}])
    result = validate_records(CONTRACT, records)
    assert result.quarantine.empty
    assert list(result.quarantine.columns) == frames.QUARANTINE_COLUMNS
    assert result.quarantine[frames.SOURCE_LINE].dtype == "int64"
    pd.testing.assert_frame_equal(result.valid, records)


def test_schema_is_built_once_and_every_check_has_a_readable_name():
    schema = build_schema(CONTRACT)
    assert build_schema(Contract.model_validate(CONTRACT.model_dump())) is schema
    names = {
        column: [check.name for check in spec.checks] for column, spec in schema.columns.items()
    }
    hygiene = ["control characters", "bidi controls"]
    assert names == {
        "text": ["missing", "length outside 2..10", "does not match '[a-z]'", *hygiene],
        "id": ["missing", *hygiene],
        "label": ["missing", "not in classes [good, bad]", *hygiene],
        "lang": ["missing", "not in allowed [en, fr]", *hygiene],
        "code": ["length outside 3..3", f"does not match '{CODE_PATTERN}'", *hygiene],
    }


@pytest.mark.parametrize(
    ("annotators", "record", "reason"),
    [
        (
            {"layout": "wide", "columns": ["r1", "r2"]},
            {"r1": "good", "r2": "xyz"},
            "r2: unknown label",
        ),
        ({"layout": "wide", "columns": ["r1", "r2"]}, {"r1": "good", "r2": None}, None),
        (
            {"layout": "long", "annotator_column": "who", "label_column": "vote"},
            {"who": None, "vote": "xyz"},
            "who: missing; vote: unknown label",
        ),
    ],
)
def test_annotator_columns(annotators, record, reason):
    contract = Contract.model_validate(
        {
            "name": "votes",
            "source": {"format": "jsonl"},
            "id": {"column": "id"},
            "text": {"column": "text"},
            "labels": {"classes": ["good", "bad"]},
            "annotators": annotators,
        }
    )
    row = {"id": "a", "text": "t"} | record
    records = pd.DataFrame({name: str_series([value]) for name, value in row.items()})
    records[frames.SOURCE_FILE], records[frames.SOURCE_LINE] = "v.jsonl", 1
    result = validate_records(contract, records)
    assert result.quarantine[frames.REASONS].tolist() == ([reason] if reason else [])

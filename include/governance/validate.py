"""Validate parsed records against a pandera schema built from the contract.

Validation is lazy, so a record that breaks several rules is quarantined once with every rule it
broke, named in words a reviewer understands ("text: length outside 1..1000"). The schema is built
once per contract: a nightly run validates up to a million records with vectorised checks.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from governance import frames, hygiene
from governance.contracts import ColumnCheck, Contract
from governance.errors import GovernanceError
from governance.reasons import Reason, ReasonKind, causes_column, rendered
from governance.tables import quarantine_frame

MISSING = "missing"
UNKNOWN_LABEL = "unknown label"
STAGE = "validate"


@dataclass
class ValidationResult:
    valid: pd.DataFrame  # the passing records, unchanged (same columns, index and order)
    quarantine: pd.DataFrame  # frames.QUARANTINE_COLUMNS, one row per failing record


def _present(values: pd.Series) -> pd.Series:
    return values.notna()


def _not_missing() -> pa.Check:
    return pa.Check(_present, ignore_na=False, name=MISSING, error=MISSING)


def _length_name(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"length outside {low}..{high}"
    return f"shorter than {low}" if low is not None else f"longer than {high}"


def _length(low: int | None, high: int | None) -> pa.Check:
    name = _length_name(low, high)
    return pa.Check.str_length(min_value=low, max_value=high, name=name, error=name)


def _stripped_length(low: int, high: int) -> pa.Check:
    """The text's length without surrounding whitespace: a text of spaces and tabs is empty."""
    name = _length_name(low, high)

    def within(values: pd.Series) -> pd.Series:
        return values.str.strip().str.len().between(low, high)

    return pa.Check(within, name=name, error=name)


def _free_of(pattern: str, name: str) -> pa.Check:
    def clean(values: pd.Series) -> pd.Series:
        return ~values.str.contains(pattern, regex=True)

    return pa.Check(clean, name=name, error=name)


def _hygiene_rules(contract: Contract) -> list[pa.Check]:
    """The characters the contract quarantines (rather than strips) in every column."""
    spec, rules = contract.text, []
    if spec.control_characters == "quarantine":
        rules.append(_free_of(hygiene.CONTROL_CHARACTERS, hygiene.CONTROL_CHECK))
    if spec.bidi_controls == "quarantine":
        rules.append(_free_of(hygiene.BIDI_CONTROLS, hygiene.BIDI_CHECK))
    return rules


def _member_of(values: list[str], name: str) -> pa.Check:
    return pa.Check.isin(values, name=name, error=name)


def _column_check_rules(check: ColumnCheck) -> list[pa.Check]:
    rules = []
    if check.required:
        rules.append(_not_missing())
    if check.min_length is not None or check.max_length is not None:
        rules.append(_length(check.min_length, check.max_length))
    if check.allowed is not None:
        rules.append(_member_of(check.allowed, f"not in allowed [{', '.join(check.allowed)}]"))
    if check.pattern is not None:
        name = f"does not match '{check.pattern}'"
        rules.append(pa.Check.str_matches(check.pattern, name=name, error=name))
    return rules


def _rules_by_column(contract: Contract) -> dict[str, list[pa.Check]]:
    """Every column's checks, in a fixed order; a rule named twice on one column is kept once."""
    classes = contract.labels.classes
    rules: dict[str, list[pa.Check]] = {}

    def add(column: str | None, *checks: pa.Check) -> None:
        if column is None:
            return
        held = rules.setdefault(column, [])
        held.extend(c for c in checks if c.name not in {h.name for h in held})

    add(
        contract.text.column,
        _not_missing(),
        _stripped_length(contract.text.min_length, contract.text.max_length),
    )
    add(contract.id.column, _not_missing())
    in_classes = f"not in classes [{', '.join(classes)}]"
    add(contract.labels.column, _not_missing(), _member_of(classes, in_classes))
    annotators = contract.annotators
    if annotators and annotators.layout == "wide":
        for column in annotators.columns or []:
            add(column, _member_of(classes, UNKNOWN_LABEL))
    elif annotators:
        add(annotators.annotator_column, _not_missing())
        add(annotators.label_column, _not_missing(), _member_of(classes, UNKNOWN_LABEL))
    for check in contract.checks:
        add(check.column, *_column_check_rules(check))
    for column in contract.source_columns:
        add(column, *_hygiene_rules(contract))
    return rules


@functools.lru_cache(maxsize=64)
def _schema_from_json(contract_json: str) -> pa.DataFrameSchema:
    contract = Contract.model_validate_json(contract_json)
    columns = {
        name: pa.Column(nullable=True, checks=checks, required=True)
        for name, checks in _rules_by_column(contract).items()
    }
    return pa.DataFrameSchema(columns, name=contract.name, coerce=False, strict=False)


def build_schema(contract: Contract) -> pa.DataFrameSchema:
    """The contract's pandera schema (cached: contracts are immutable)."""
    return _schema_from_json(contract.model_dump_json())


def _reasons_by_row(schema: pa.DataFrameSchema, failures: pd.DataFrame) -> pd.Series:
    """The reasons of every failing row (a list per row), in schema column and check order."""
    if failures["index"].isna().any():
        summary = failures.loc[failures["index"].isna(), ["column", "check"]]
        raise GovernanceError(
            f"schema {schema.name}: frame-level failure {summary.to_dict('records')}"
        )
    order = {name: position for position, name in enumerate(schema.columns)}
    table = pd.DataFrame(
        {
            "row": failures["index"].to_numpy(),
            "column_order": failures["column"].map(order).to_numpy(),
            "check_number": failures["check_number"].to_numpy(),
            "column": failures["column"].astype(str).to_numpy(),
            "check": failures["check"].astype(str).to_numpy(),
        }
    )
    table = table.drop_duplicates(["row", "column_order", "check_number"])
    table = table.sort_values(["row", "column_order", "check_number"], kind="stable")
    reasons = pd.Series(
        [
            Reason(ReasonKind.CHECK, check, column)
            for column, check in zip(table["column"], table["check"], strict=True)
        ],
        index=table.index,
        dtype=object,
    )
    return reasons.groupby(table["row"].to_numpy(), sort=True).agg(list)


def record_previews(records: pd.DataFrame, columns: list[str]) -> list[str]:
    """The failing records' source values as JSON, cut to the preview length."""
    present = [c for c in columns if c in records.columns]
    values = records[present].astype(object).where(records[present].notna(), None)
    return [
        json.dumps(dict(zip(present, row, strict=True)), ensure_ascii=False)[
            : frames.RAW_PREVIEW_CHARS
        ]
        for row in values.itertuples(index=False, name=None)
    ]


def validate_records(
    contract: Contract, records: pd.DataFrame, raw: pd.DataFrame | None = None
) -> ValidationResult:
    """Split records into valid ones and one quarantine row per failing record.

    `records` holds the contract's source columns plus source_file and source_line; `raw`, when
    given (same index), holds the values as read, used for the quarantine preview so a reviewer
    sees the spelling that failed rather than its canonical form.
    """
    schema = build_schema(contract)
    try:
        schema.validate(records, lazy=True)
    except pa.errors.SchemaErrors as exc:
        reasons = _reasons_by_row(schema, exc.failure_cases)
    else:
        return ValidationResult(records, quarantine_frame())
    failing = records.loc[reasons.index]
    source = (raw if raw is not None else records).loc[reasons.index]
    id_column = contract.id.column
    quarantine = quarantine_frame(
        {
            frames.SOURCE_FILE: failing[frames.SOURCE_FILE].to_numpy(),
            frames.SOURCE_LINE: failing[frames.SOURCE_LINE].to_numpy(),
            frames.N_SOURCE_ROWS: 1,
            frames.STAGE: STAGE,
            frames.REASONS: [rendered(row) for row in reasons],
            frames.ITEM_ID: failing[id_column].to_numpy() if id_column else None,
            frames.RAW: record_previews(source, contract.source_columns),
            frames.CAUSES: causes_column(reasons),
        }
    )
    return ValidationResult(records.drop(index=reasons.index), quarantine)

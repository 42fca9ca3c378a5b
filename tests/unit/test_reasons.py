"""Structured quarantine reasons: the reviewer's line is rendered from them, the manifest counts
them, and the published quarantine table keeps their type even when nothing was quarantined."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from governance import frames
from governance.reasons import Reason, ReasonKind, causes_column, from_record, rendered
from governance.tables import CAUSES_TYPE, quarantine_frame, write_parquet

PARSE = Reason(ReasonKind.PARSE, "csv_error", message="unexpected end of data")
LENGTH = Reason(ReasonKind.CHECK, "length outside 1..10", column="text")
MISSING = Reason(ReasonKind.CHECK, "missing", column="label")
CONFLICT = Reason(ReasonKind.CONFLICT, "label_conflict", message="cluster c1 has labels a, b")


@pytest.mark.parametrize(
    ("reason", "key", "text"),
    [
        (PARSE, "csv_error", "csv_error: unexpected end of data"),
        (LENGTH, "text: length outside 1..10", "text: length outside 1..10"),
        (CONFLICT, "label_conflict", "label_conflict: cluster c1 has labels a, b"),
        (Reason(ReasonKind.DUPLICATE, "duplicate_id"), "duplicate_id", "duplicate_id"),
    ],
)
def test_a_reason_renders_its_key_then_its_detail(reason: Reason, key: str, text: str) -> None:
    assert (reason.key, reason.text) == (key, text)
    assert from_record(reason.record()) == reason


def test_several_reasons_render_as_one_line_in_order() -> None:
    assert rendered([LENGTH, MISSING]) == "text: length outside 1..10; label: missing"


def quarantine(rows: list[tuple[str, int, list[Reason]]]) -> pd.DataFrame:
    return quarantine_frame(
        {
            frames.SOURCE_FILE: ["f.csv"] * len(rows),
            frames.SOURCE_LINE: list(range(1, len(rows) + 1)),
            frames.N_SOURCE_ROWS: [weight for _, weight, _ in rows],
            frames.STAGE: [stage for stage, _, _ in rows],
            frames.REASONS: [rendered(reasons) for _, _, reasons in rows],
            frames.ITEM_ID: [None] * len(rows),
            frames.RAW: [""] * len(rows),
            frames.CAUSES: causes_column([reasons for _, _, reasons in rows]),
        }
    )


def test_totals_weigh_rows_and_count_a_row_under_each_rule_it_broke() -> None:
    rows = [
        ("parse", 1, [PARSE]),
        ("validate", 1, [LENGTH, MISSING]),
        ("validate", 1, [LENGTH]),
        ("dedup", 3, [CONFLICT]),
    ]
    totals = frames.reason_totals(quarantine(rows))
    expected: Counter[tuple[str, str]] = Counter()
    for stage, weight, reasons in rows:
        for reason in reasons:
            expected[(stage, reason.key)] += weight
    got = {(s, k): int(n) for s, k, n in totals[["stage", "key", "rows"]].itertuples(index=False)}
    assert got == dict(expected)
    assert totals.groupby("kind")["rows"].sum().to_dict() == {
        "check": 3,
        "conflict": 3,
        "parse": 1,
    }


@pytest.mark.parametrize("rows", [[], [("parse", 1, [PARSE]), ("dedup", 2, [CONFLICT])]])
def test_the_causes_column_keeps_its_type_on_disk(tmp_path: Path, rows) -> None:
    path = tmp_path / "quarantine.parquet"
    table = quarantine(rows)
    write_parquet(table, path)
    assert pq.read_schema(path).field(frames.CAUSES).type == CAUSES_TYPE
    back = pd.read_parquet(path)
    assert list(back.columns) == frames.QUARANTINE_COLUMNS
    assert [[from_record(c) for c in causes] for causes in back[frames.CAUSES]] == [
        reasons for _, _, reasons in rows
    ]


def test_a_stage_that_quarantines_nothing_writes_an_empty_typed_table(tmp_path: Path) -> None:
    items = pd.DataFrame({column: [] for column in frames.ITEM_COLUMNS})
    table = frames.quarantined_items(items, "dedup", [])
    path = tmp_path / "quarantine_dedup.parquet"
    write_parquet(table, path)
    assert pq.read_schema(path).field(frames.CAUSES).type == CAUSES_TYPE
    assert pd.read_parquet(path).empty

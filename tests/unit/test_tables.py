"""tables.spreadsheet_safe_csv: no cell of a CSV the project writes runs as a formula."""

from __future__ import annotations

import csv
import io

import pandas as pd

from governance.tables import FORMULA_TRIGGERS, spreadsheet_safe_csv

TEXTS = [
    '=HYPERLINK("http://x","click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\tleading tab",
    "\rleading CR",
    "plain text",
    "a = b inside is harmless",
    "'already quoted",
    None,
]


def test_every_text_cell_a_spreadsheet_would_run_is_neutralised_and_numbers_keep_their_sign():
    frame = pd.DataFrame(
        {
            "text": pd.Series(TEXTS, dtype="str"),
            "note": pd.Series(["=1", "ok", None, "-x", "y", "z", "w", "v", "u", "t"], dtype=object),
            "score": [-0.5, 1.0, -2.0, 0.0, 3.0, -1.0, 2.0, 4.0, 5.0, -6.0],
        }
    )
    rows = list(csv.DictReader(io.StringIO(spreadsheet_safe_csv(frame), newline="")))
    assert len(rows) == len(frame)
    for row, original in zip(rows, frame.itertuples(index=False), strict=True):
        for column in ("text", "note"):
            value = getattr(original, column)
            if value is None or pd.isna(value):
                assert row[column] == ""
            elif value.startswith(FORMULA_TRIGGERS):
                assert row[column] == "'" + value
            else:
                assert row[column] == value
        assert float(row["score"]) == original.score
    assert not any(row[c].startswith(FORMULA_TRIGGERS) for row in rows for c in ("text", "note"))


def test_text_cells_are_quoted_so_a_carriage_return_cannot_start_a_row():
    frame = pd.DataFrame({"text": ["a\rb", "c"], "n": [1, -2]})
    assert spreadsheet_safe_csv(frame) == '"text","n"\n"a\rb",1\n"c",-2\n'

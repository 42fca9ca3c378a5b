"""Typed pandas frames with the column names of governance.frames.

Stages hand each other these frames, and the published files are written from them, so their
columns and dtypes are fixed here once: strings as pandas' "str" dtype (missing values allowed),
counts and line numbers as int64, also when a frame is empty; a quarantine row's structured
reasons as a list column whose Arrow type is fixed when it is written.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from governance import frames
from governance.reasons import CAUSE_FIELDS

_INTEGER_COLUMNS = frozenset({frames.SOURCE_LINE, frames.N_SOURCE_ROWS})
_OBJECT_COLUMNS = frozenset({frames.CAUSES})
# The Arrow type of the causes column: a list of reasons per quarantine row.
CAUSES_TYPE = pa.list_(pa.struct([(name, pa.string()) for name in CAUSE_FIELDS]))

# A cell a spreadsheet would run as a formula starts with one of these (OWASP, CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# What typed_frame builds from: a frame, columns by name, or records.
FrameData = pd.DataFrame | Mapping[str, object] | Sequence[Mapping]


def str_series(values: Sequence[str | None]) -> pd.Series:
    """A "str" Series from Python strings, built through Arrow (several times faster for 1M)."""
    return pd.Series(pd.array(pa.array(values, type=pa.large_string()), dtype="str"))


def _dtype(column: str) -> str:
    if column in _INTEGER_COLUMNS:
        return "int64"
    return "object" if column in _OBJECT_COLUMNS else "str"


def typed_frame(data: FrameData, columns: list[str]) -> pd.DataFrame:
    """A frame with exactly `columns`, integers as int64, causes as lists, the rest as "str".

    Series values keep their index (align them first); scalars are broadcast.
    """
    frame = pd.DataFrame(data, columns=columns)
    wanted = {name: _dtype(name) for name in columns}
    retype = {name: dtype for name, dtype in wanted.items() if frame[name].dtype != dtype}
    return (frame.astype(retype) if retype else frame).reset_index(drop=True)


def quarantine_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.QUARANTINE_COLUMNS)


def items_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.ITEM_COLUMNS)


def annotations_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.ANNOTATION_COLUMNS)


def write_parquet(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    """Write a frame without its index; a causes column keeps its list type when it is empty."""
    frame = frame.reset_index(drop=True)
    schema = None
    if frames.CAUSES in frame.columns:
        frame = frame.astype({frames.CAUSES: object})
        inferred = pa.Schema.from_pandas(frame, preserve_index=False)
        position = inferred.get_field_index(frames.CAUSES)
        schema = inferred.set(position, pa.field(frames.CAUSES, CAUSES_TYPE))
    frame.to_parquet(path, index=False, schema=schema, **options)


def spreadsheet_safe_csv(frame: pd.DataFrame) -> str:
    """The frame as CSV that a spreadsheet opens without running anything (OWASP's advice
    against CSV injection): every text cell starting with ``= + - @``, a tab or a carriage
    return gets a leading ``'``, so a reviewer sees the text instead of a formula's result, and
    every text cell is quoted, so a line break inside one cannot start a row. Numbers are not
    text cells and keep their sign."""
    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        text = values.map(lambda value: value if isinstance(value, str) else None)
        risky = text.str.startswith(FORMULA_TRIGGERS).fillna(False).astype(bool)
        if risky.any():
            safe[column] = values.astype(object).where(~risky, "'" + text)
    return safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC)

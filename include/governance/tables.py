"""Typed pandas frames with the column names of governance.frames.

Stages hand each other these frames, and the published files are written from them, so their
columns and dtypes are fixed here once: strings as pandas' "str" dtype (missing values allowed),
counts and line numbers as int64, also when a frame is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import pyarrow as pa

from governance import frames

_INTEGER_COLUMNS = frozenset({frames.SOURCE_LINE, frames.N_SOURCE_ROWS})

# What typed_frame builds from: a frame, columns by name, or records.
FrameData = pd.DataFrame | Mapping[str, object] | Sequence[Mapping]


def str_series(values: Sequence[str | None]) -> pd.Series:
    """A "str" Series from Python strings, built through Arrow (several times faster for 1M)."""
    return pd.Series(pd.array(pa.array(values, type=pa.large_string()), dtype="str"))


def typed_frame(data: FrameData, columns: list[str]) -> pd.DataFrame:
    """A frame with exactly `columns`, integers as int64 and everything else as "str".

    Series values keep their index (align them first); scalars are broadcast.
    """
    frame = pd.DataFrame(data, columns=columns)
    wanted = {name: "int64" if name in _INTEGER_COLUMNS else "str" for name in columns}
    retype = {name: dtype for name, dtype in wanted.items() if frame[name].dtype != dtype}
    return (frame.astype(retype) if retype else frame).reset_index(drop=True)


def quarantine_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.QUARANTINE_COLUMNS)


def items_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.ITEM_COLUMNS)


def annotations_frame(data: FrameData = ()) -> pd.DataFrame:
    return typed_frame(data, frames.ANNOTATION_COLUMNS)

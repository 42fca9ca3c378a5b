"""Column names of the frames that pass between stages.

Every stage speaks these names, so a stage can be tested, swapped or benchmarked alone.

- items: one row per item that survived parsing and validation.
- annotations: one row per (item, annotator) vote, only for multi-annotator contracts.
- quarantine: one row per rejected record (or per rejected item, weighted by ``n_source_rows``).

Conservation is counted in source rows: rows_in == quarantine.n_source_rows.sum()
+ dropped duplicates' n_source_rows + the n_source_rows of the items in train, val and test.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

ITEM_ID = "item_id"
TEXT = "text"
LABEL = "label"
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
N_SOURCE_ROWS = "n_source_rows"

ANNOTATOR = "annotator"
RAW_LABEL = "raw_label"

STAGE = "stage"
REASONS = "reasons"
RAW = "raw"

CLUSTER_ID = "cluster_id"
KEPT_ITEM_ID = "kept_item_id"
DUPLICATE_KIND = "kind"
SPLIT = "split"

ITEM_COLUMNS = [ITEM_ID, TEXT, LABEL, SOURCE_FILE, SOURCE_LINE, N_SOURCE_ROWS]
ANNOTATION_COLUMNS = [ITEM_ID, ANNOTATOR, LABEL, RAW_LABEL]
QUARANTINE_COLUMNS = [SOURCE_FILE, SOURCE_LINE, N_SOURCE_ROWS, STAGE, REASONS, ITEM_ID, RAW]

SPLITS = ("train", "val", "test")
RAW_PREVIEW_CHARS = 500


def quarantined_items(items: pd.DataFrame, stage: str, reasons: Iterable[str]) -> pd.DataFrame:
    """Quarantine rows for whole items (weighted by their source rows), one reason each."""
    return pd.DataFrame(
        {
            SOURCE_FILE: items[SOURCE_FILE].to_numpy(),
            SOURCE_LINE: items[SOURCE_LINE].to_numpy(),
            N_SOURCE_ROWS: items[N_SOURCE_ROWS].to_numpy(),
            STAGE: stage,
            REASONS: pd.array(list(reasons), dtype="str"),
            ITEM_ID: items[ITEM_ID].to_numpy(),
            # a Series (its index is the frame's until the reset): pandas' string dtype
            RAW: items[TEXT].astype(str).str.slice(0, RAW_PREVIEW_CHARS),
        },
        columns=QUARANTINE_COLUMNS,
    ).reset_index(drop=True)

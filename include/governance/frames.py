"""Column names of the frames that pass between stages.

Every stage speaks these names, so a stage can be tested, swapped or benchmarked alone.

- items: one row per item that survived parsing and validation.
- annotations: one row per (item, annotator) vote, only for multi-annotator contracts.
- quarantine: one row per rejected record (or per rejected item, weighted by ``n_source_rows``).

Conservation is counted in source rows: rows_in == quarantine.n_source_rows.sum()
+ dropped duplicates' n_source_rows + the n_source_rows of the items in train, val and test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from governance.reasons import Reason, causes_column, from_record, rendered

ITEM_ID = "item_id"
TEXT = "text"
LABEL = "label"
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
N_SOURCE_ROWS = "n_source_rows"

ANNOTATOR = "annotator"
RAW_LABEL = "raw_label"

STAGE = "stage"
REASONS = "reasons"  # the reviewer's line, rendered from CAUSES
CAUSES = "causes"  # the structured reasons (governance.reasons), one list per row
RAW = "raw"

CLUSTER_ID = "cluster_id"
KEPT_ITEM_ID = "kept_item_id"
DUPLICATE_KIND = "kind"
SPLIT = "split"

ITEM_COLUMNS = [ITEM_ID, TEXT, LABEL, SOURCE_FILE, SOURCE_LINE, N_SOURCE_ROWS]
ANNOTATION_COLUMNS = [ITEM_ID, ANNOTATOR, LABEL, RAW_LABEL]
QUARANTINE_COLUMNS = [SOURCE_FILE, SOURCE_LINE, N_SOURCE_ROWS, STAGE, REASONS, ITEM_ID, RAW, CAUSES]

SPLITS = ("train", "val", "test")
RAW_PREVIEW_CHARS = 500


def quarantined_items(
    items: pd.DataFrame, stage: str, reasons: Sequence[Sequence[Reason]]
) -> pd.DataFrame:
    """Quarantine rows for whole items (weighted by their source rows), with their reasons."""
    # The causes column's type is fixed where tables are written (tables.write_parquet).
    return pd.DataFrame(
        {
            SOURCE_FILE: items[SOURCE_FILE].to_numpy(),
            SOURCE_LINE: items[SOURCE_LINE].to_numpy(),
            N_SOURCE_ROWS: items[N_SOURCE_ROWS].to_numpy(),
            STAGE: stage,
            REASONS: pd.array([rendered(row) for row in reasons], dtype="str"),
            ITEM_ID: items[ITEM_ID].to_numpy(),
            # a Series (its index is the frame's until the reset): pandas' string dtype
            RAW: items[TEXT].astype(str).str.slice(0, RAW_PREVIEW_CHARS),
            CAUSES: causes_column(reasons),
        },
        columns=QUARANTINE_COLUMNS,
    ).reset_index(drop=True)


def reason_totals(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantined source rows per (stage, kind, check, column, key): a row that broke several
    rules counts under each of them."""
    lists = quarantine[CAUSES].to_numpy()
    sizes = np.fromiter((len(row) for row in lists), dtype=np.int64, count=len(lists))
    reasons = [from_record(record) for row in lists for record in row]
    table = pd.DataFrame(
        {
            "stage": np.repeat(quarantine[STAGE].astype(str).to_numpy(), sizes),
            "kind": [str(reason.kind) for reason in reasons],
            "check": [reason.check for reason in reasons],
            "column": [reason.column or "" for reason in reasons],
            "key": [reason.key for reason in reasons],
            "rows": np.repeat(quarantine[N_SOURCE_ROWS].to_numpy(dtype=np.int64), sizes),
        }
    )
    group = ["stage", "kind", "check", "column", "key"]
    return table.groupby(group, sort=True)["rows"].sum().reset_index()

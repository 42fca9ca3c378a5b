"""Ingest one day's landing partition: read, canonicalise labels, validate, assemble items.

The result keeps every source record accounted for: each one ends up in an item (n_source_rows
counts the records behind it) or in quarantine with a reason, so
rows_in == items.n_source_rows.sum() + quarantine.n_source_rows.sum().
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from governance import frames, hygiene
from governance.audit.aggregators import Votes, plurality
from governance.contracts import AnnotatorSpec, Contract
from governance.errors import EmptyPartitionError, InvalidInputError
from governance.labels import LabelCanon
from governance.landing import Partition, scan_partition
from governance.manifest import TextHygiene
from governance.readers import ParsedFile, read_file, refused_entry
from governance.reasons import Reason, ReasonKind, causes_column
from governance.tables import annotations_frame, items_frame, quarantine_frame, str_series
from governance.validate import STAGE, record_previews, validate_records

# What the partition as a whole refuses in records that are valid one by one.
DUPLICATE_ID = Reason(ReasonKind.DUPLICATE, "duplicate_id")
DUPLICATE_VOTE = Reason(ReasonKind.DUPLICATE, "duplicate_vote")
INCONSISTENT_TEXT = Reason(ReasonKind.CONFLICT, "inconsistent_text")


@dataclass
class IngestResult:
    items: pd.DataFrame  # frames.ITEM_COLUMNS, provenance order (file name order, then line)
    annotations: pd.DataFrame  # frames.ANNOTATION_COLUMNS (empty for single-label contracts)
    quarantine: pd.DataFrame  # frames.QUARANTINE_COLUMNS, stage "parse" or "validate"
    rows_in: int  # records read from all files (header excluded)
    files: list[dict]  # per entry of the partition (manifest.InputFile): read, refused, skipped
    label_mapping: dict  # LabelCanon.report() over every parsed record
    warnings: list[str]
    hygiene: TextHygiene


@dataclass
class _Assembled:
    items: pd.DataFrame
    annotations: pd.DataFrame
    quarantine: pd.DataFrame


def label_columns(contract: Contract) -> list[str]:
    """Columns whose values are label spellings to canonicalise."""
    annotators = contract.annotators
    names = [contract.labels.column]
    if annotators and annotators.layout == "wide":
        names.extend(annotators.columns or [])
    elif annotators:
        names.append(annotators.label_column)
    return list(dict.fromkeys(name for name in names if name))


def _records_frame(contract: Contract, parsed: list[ParsedFile]) -> pd.DataFrame:
    """Parsed records of all files as strings; empty values are missing, except in the text."""
    data: dict[str, list] = {name: [] for name in contract.source_columns}
    names: list[str] = []
    lines: list[int] = []
    for part in (part for part in parsed if part.rows):
        for name, position in zip(contract.source_columns, part.positions, strict=True):
            data[name] += [row[position] for row in part.rows]
        names += [part.name] * len(part.lines)
        lines += part.lines
    columns = {name: str_series(values) for name, values in data.items()}
    for name, values in columns.items():
        if name != contract.text.column:
            columns[name] = values.where(values != "")
    columns[frames.SOURCE_FILE] = str_series(names)
    columns[frames.SOURCE_LINE] = pd.Series(lines, dtype="int64")
    return pd.DataFrame(columns)


def _canonicalise(canon: LabelCanon, values: pd.Series) -> pd.Series:
    """Known spellings become their class; unknown ones stay (stripped) so validation names them."""
    mapping = {}
    counts = values.value_counts(sort=False)  # a "str" column: its distinct values are str
    for raw, count in cast("Iterable[tuple[str, int]]", counts.items()):
        mapping[raw] = canon.canonical(raw, count=int(count)) or raw.strip() or None
    return values.map(mapping).astype("str")


def derived_ids(texts: pd.Series) -> pd.Series:
    """Content ids: sha256 of the text (16 hex chars), "-<k>" on the k-th repeat, deterministic."""
    digests = str_series(
        [
            hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            for text in texts.tolist()
        ]
    )
    digests.index = texts.index
    repeated = digests.duplicated(keep=False)
    if not repeated.any():
        return digests
    shared = digests[repeated]
    repeat = shared.groupby(shared, sort=False).cumcount()
    digests[repeated] = shared.where(repeat == 0, shared + "-" + repeat.astype("str"))
    return digests


def plurality_labels(annotations: pd.DataFrame, classes: list[str]) -> pd.Series:
    """Each voted item's most voted label; a tie goes to the tied label declared first in the
    contract (the audit's plurality, so a reviewer can count it by hand)."""
    votes = Votes.of(annotations, classes)
    winners = np.asarray(classes, dtype=object)[plurality(votes).argmax(axis=1)]
    return pd.Series(winners, index=votes.items, dtype="str")


def _flagged(contract: Contract, records: pd.DataFrame, raw: pd.DataFrame, reason: Reason):
    """Quarantine rows for valid records that the partition as a whole rejects."""
    id_column = contract.id.column
    return quarantine_frame(
        {
            frames.SOURCE_FILE: records[frames.SOURCE_FILE].to_numpy(),
            frames.SOURCE_LINE: records[frames.SOURCE_LINE].to_numpy(),
            frames.N_SOURCE_ROWS: 1,
            frames.STAGE: STAGE,
            frames.REASONS: reason.text,
            frames.ITEM_ID: records[id_column].to_numpy() if id_column else None,
            frames.RAW: record_previews(raw.loc[records.index], contract.source_columns),
            frames.CAUSES: causes_column([[reason]]) * len(records),
        }
    )


def _items(contract: Contract, records: pd.DataFrame, item_ids: pd.Series, n_rows) -> pd.DataFrame:
    label = contract.labels.column
    return items_frame(
        {
            frames.ITEM_ID: item_ids,
            frames.TEXT: records[contract.text.column],
            frames.LABEL: records[label] if label else None,
            frames.SOURCE_FILE: records[frames.SOURCE_FILE],
            frames.SOURCE_LINE: records[frames.SOURCE_LINE],
            frames.N_SOURCE_ROWS: n_rows,
        }
    )


def _with_plurality(
    contract: Contract, items: pd.DataFrame, annotations: pd.DataFrame
) -> pd.DataFrame:
    """Items labelled by their votes alone: the plurality vote."""
    labels = plurality_labels(annotations, list(contract.labels.classes))
    items[frames.LABEL] = items[frames.ITEM_ID].astype("str").map(labels).astype("str")
    return items


def _annotator_spec(contract: Contract) -> AnnotatorSpec:
    if contract.annotators is None:
        raise InvalidInputError(f"{contract.name}: the contract declares no annotators")
    return contract.annotators


def _wide_annotations(
    contract: Contract, records: pd.DataFrame, raw: pd.DataFrame, item_ids: pd.Series
) -> pd.DataFrame:
    """One vote per non-empty annotator cell, ordered by item then annotator column."""
    parts = []
    for column in _annotator_spec(contract).columns or []:
        voted = records[column].notna()
        parts.append(
            pd.DataFrame(
                {
                    "position": records.index[voted],
                    frames.ITEM_ID: item_ids[voted].to_numpy(),
                    frames.ANNOTATOR: column,
                    frames.LABEL: records.loc[voted, column].to_numpy(),
                    frames.RAW_LABEL: raw.loc[records.index[voted], column].to_numpy(),
                }
            )
        )
    votes = pd.concat(parts, ignore_index=True).sort_values("position", kind="stable")
    return annotations_frame(votes.drop(columns="position").reset_index(drop=True))


def _assemble_by_record(contract: Contract, valid: pd.DataFrame, raw: pd.DataFrame) -> _Assembled:
    """Single-label and wide layouts: one record is one item."""
    quarantine = quarantine_frame()
    id_column = contract.id.column
    if id_column:
        repeated = valid[id_column].duplicated(keep="first")
        quarantine = _flagged(contract, valid[repeated], raw, DUPLICATE_ID)
        valid = valid[~repeated]
        item_ids = valid[id_column]
    else:
        item_ids = derived_ids(valid[contract.text.column])
    items = _items(contract, valid, item_ids, 1)
    annotations = annotations_frame()
    if contract.annotators:
        annotations = _wide_annotations(contract, valid, raw, item_ids)
        if contract.labels.column is None:
            items = _with_plurality(contract, items, annotations)
    return _Assembled(items, annotations, quarantine)


def _assemble_long(contract: Contract, valid: pd.DataFrame, raw: pd.DataFrame) -> _Assembled:
    """Long layout: records are votes, grouped into items by the id column."""
    id_column, text_column = contract.id.column, contract.text.column
    spec = _annotator_spec(contract)
    annotator, label = spec.annotator_column, spec.label_column
    texts_per_id = valid.groupby(id_column, sort=False)[text_column].nunique(dropna=False)
    inconsistent = valid[id_column].isin(texts_per_id.index[texts_per_id > 1])
    rest = valid[~inconsistent]
    repeated_vote = rest.duplicated([id_column, annotator], keep="first")
    votes = rest[~repeated_vote]
    quarantine = pd.concat(
        [
            _flagged(contract, valid[inconsistent], raw, INCONSISTENT_TEXT),
            _flagged(contract, rest[repeated_vote], raw, DUPLICATE_VOTE),
        ],
        ignore_index=True,
    )
    firsts = votes.drop_duplicates(id_column, keep="first")
    vote_counts = votes[id_column].value_counts(sort=False)
    items = _items(contract, firsts, firsts[id_column], firsts[id_column].map(vote_counts))
    annotations = annotations_frame(
        {
            frames.ITEM_ID: votes[id_column].to_numpy(),
            frames.ANNOTATOR: votes[annotator].to_numpy(),
            frames.LABEL: votes[label].to_numpy(),
            frames.RAW_LABEL: raw.loc[votes.index, label].to_numpy(),
        }
    )
    return _Assembled(_with_plurality(contract, items, annotations), annotations, quarantine)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Parsing allocates millions of row lists that hold no reference cycles; the cyclic
    collector would rescan all of them again and again (half the run time for 1M rows)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_partition(contract: Contract, partition_dir: Path) -> IngestResult:
    """Read, canonicalise, validate and assemble one day's partition for one contract."""
    partition = scan_partition(contract, partition_dir)
    with _cyclic_gc_paused():
        parsed = [refused_entry(entry) for entry in partition.refused]
        parsed += [read_file(contract, file) for file in partition.files]
        parsed.sort(key=lambda part: part.name)
        if not any(part.records for part in parsed):
            raise EmptyPartitionError(
                f"partition folder {partition_dir} has no data row: "
                + ", ".join(f"{part.name} ({_emptiness(part)})" for part in parsed)
            )
        return _ingest(contract, parsed, partition)


def _emptiness(part: ParsedFile) -> str:
    if not part.size:
        return "empty"
    return f"{part.size} byte{'s' if part.size != 1 else ''}, no data row"


def _ingest(contract: Contract, parsed: list[ParsedFile], partition: Partition) -> IngestResult:
    raw = _records_frame(contract, parsed)
    records, cleaned = hygiene.clean(contract, raw)
    canon = LabelCanon(contract.labels)
    for column in label_columns(contract):
        records[column] = _canonicalise(canon, records[column])
    checked = validate_records(contract, records, raw)
    long_layout = contract.annotators is not None and contract.annotators.layout == "long"
    assemble = _assemble_long if long_layout else _assemble_by_record
    assembled = assemble(contract, checked.valid, raw)
    parse_rejects = quarantine_frame([row for part in parsed for row in part.rejected])
    quarantine = pd.concat(
        [parse_rejects, checked.quarantine, assembled.quarantine], ignore_index=True
    )
    quarantine = quarantine.sort_values(
        [frames.SOURCE_FILE, frames.SOURCE_LINE], kind="stable"
    ).reset_index(drop=True)
    return IngestResult(
        items=assembled.items.reset_index(drop=True),
        annotations=assembled.annotations.reset_index(drop=True),
        quarantine=quarantine_frame(quarantine),
        rows_in=sum(part.records for part in parsed),
        files=[part.described() for part in parsed]
        + [entry.described() for entry in partition.skipped],
        label_mapping=canon.report(),
        warnings=[warning for part in parsed for warning in part.warnings],
        hygiene=cleaned,
    )

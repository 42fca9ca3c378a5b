"""Scores a published version against the demo feed's ground truth, stage by stage.

The demo feed (``governance.demo.feed``) knows every defect it injected; this module reads what the
pipeline published for the same day and counts, per stage, the defects it caught (tp), the clean
rows it flagged (fp) and the defects it missed (fn). Matching keys:

- parse, validate: (source file name, 1-based line). A quarantine row standing for n source rows
  covers the n consecutive lines from ``source_line`` (the feed writes an item's votes together).
- exact_dedup, near_dedup: item ids of the dropped members listed in duplicates.parquet. Items in
  conflicting clusters are scored by ``conflicts`` only, whatever table lists them.
- conflicts: item ids of quarantine rows of stage "dedup" whose reasons start "label_conflict".
- label_canonicalisation: dirty-spelled votes of published items, keyed (item_id, annotator);
  predicted are the votes whose canonical label differs from their raw spelling.
- flipped_labels: item ids in the review queue against the published items whose votes were all
  flipped to a wrong class.
- unreliable_annotators: annotators flagged in annotator_quality against the generator's
  unreliable annotators that voted on published items.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from governance import frames
from governance.demo.feed import DayTruth, load_truth
from governance.errors import InvalidInputError, MissingInputError

STAGES = (
    "parse",
    "validate",
    "label_canonicalisation",
    "exact_dedup",
    "near_dedup",
    "conflicts",
    "flipped_labels",
    "unreliable_annotators",
)
CONFLICT_REASON = "label_conflict"
MANIFEST = "manifest.json"
LINE_COLUMNS = [frames.SOURCE_FILE, frames.SOURCE_LINE, frames.N_SOURCE_ROWS]


def score(predicted: Iterable[Hashable], actual: Iterable[Hashable]) -> dict:
    """tp, fp, fn, precision and recall; a ratio with nothing to count is None."""
    predicted, actual = set(predicted), set(actual)
    tp = len(predicted & actual)
    return _with_ratios(tp, len(predicted - actual), len(actual - predicted))


def _with_ratios(tp: int, fp: int, fn: int) -> dict:
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def _read(version_dir: Path, name: str, columns: list[str], required: bool = True) -> pd.DataFrame:
    path = version_dir / name
    if not path.exists():
        if required:
            raise MissingInputError(f"{path}: missing from the published version")
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    table = pd.read_parquet(path)
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise InvalidInputError(f"{path}: missing columns {missing}")
    return table[columns]


def _line_keys(rows: pd.DataFrame) -> set[tuple[str, int]]:
    keys: set[tuple[str, int]] = set()
    for source_file, line, n_rows in rows[LINE_COLUMNS].itertuples(index=False):
        if pd.isna(source_file) or pd.isna(line):
            continue
        count = 1 if pd.isna(n_rows) else max(1, int(n_rows))
        name = Path(str(source_file)).name
        keys.update((name, int(line) + offset) for offset in range(count))
    return keys


def _quarantine_keys(quarantine: pd.DataFrame, stage: str) -> set[tuple[str, int]]:
    return _line_keys(quarantine[quarantine[frames.STAGE] == stage])


def _dropped(duplicates: pd.DataFrame, kind: str) -> set[str]:
    rows = duplicates[
        (duplicates[frames.DUPLICATE_KIND] == kind)
        & (duplicates[frames.ITEM_ID] != duplicates[frames.KEPT_ITEM_ID])
    ]
    return set(rows[frames.ITEM_ID].dropna().astype(str))


def _conflicting(quarantine: pd.DataFrame) -> set[str]:
    conflict = [
        any(cause["check"] == CONFLICT_REASON for cause in causes)
        for causes in quarantine[frames.CAUSES]
    ]
    rows = quarantine[(quarantine[frames.STAGE] == "dedup") & np.asarray(conflict, dtype=bool)]
    return set(rows[frames.ITEM_ID].dropna().astype(str))


def _canonicalisation(truth: DayTruth, annotations: pd.DataFrame, published: set[str]) -> dict:
    dirty = {(i, a): label for i, a, label in truth.dirty_votes if i in published}
    votes = annotations[annotations[frames.ITEM_ID].astype(str).isin(published)]
    changed = votes[
        votes[frames.RAW_LABEL].notna() & (votes[frames.RAW_LABEL] != votes[frames.LABEL])
    ]
    tp = fp = 0
    for item_id, annotator, label in changed[
        [frames.ITEM_ID, frames.ANNOTATOR, frames.LABEL]
    ].itertuples(index=False):
        if dirty.get((str(item_id), str(annotator))) == label:
            tp += 1
        else:
            fp += 1
    return _with_ratios(tp, fp, len(dirty) - tp)


def evaluate_version(truth: DayTruth, version_dir: Path) -> dict[str, dict]:
    """Per-stage tp/fp/fn/precision/recall of one published version against its day's truth."""
    version_dir = Path(version_dir)
    if not (version_dir / MANIFEST).exists():
        raise MissingInputError(f"{version_dir}: no {MANIFEST}, not a complete published version")
    published = {
        str(item_id)
        for split in frames.SPLITS
        for item_id in _read(version_dir, f"{split}.parquet", [frames.ITEM_ID], False)[
            frames.ITEM_ID
        ]
    }
    quarantine = _read(
        version_dir,
        "quarantine.parquet",
        [*LINE_COLUMNS, frames.STAGE, frames.CAUSES, frames.ITEM_ID],
    )
    duplicates = _read(
        version_dir,
        "duplicates.parquet",
        [frames.ITEM_ID, frames.KEPT_ITEM_ID, frames.DUPLICATE_KIND],
    )
    annotations = _read(
        version_dir,
        "annotations.parquet",
        [frames.ITEM_ID, frames.ANNOTATOR, frames.LABEL, frames.RAW_LABEL],
    )
    queue = _read(version_dir, "review_queue.parquet", [frames.ITEM_ID])
    quality = _read(version_dir, "annotator_quality.parquet", [frames.ANNOTATOR, "flagged"])
    on_published = annotations[annotations[frames.ITEM_ID].astype(str).isin(published)]
    voters = set(on_published[frames.ANNOTATOR].dropna().astype(str))
    conflicts = set(truth.conflicts)
    return {
        "parse": score(_quarantine_keys(quarantine, "parse"), map(tuple, truth.unparseable)),
        "validate": score(
            _quarantine_keys(quarantine, "validate"), map(tuple, truth.schema_violations)
        ),
        "label_canonicalisation": _canonicalisation(truth, annotations, published),
        "exact_dedup": score(
            _dropped(duplicates, "exact") - conflicts, set(truth.exact_duplicates) - conflicts
        ),
        "near_dedup": score(
            _dropped(duplicates, "near") - conflicts, set(truth.near_duplicates) - conflicts
        ),
        "conflicts": score(_conflicting(quarantine), conflicts),
        "flipped_labels": score(
            queue[frames.ITEM_ID].astype(str), set(truth.flipped_items) & published
        ),
        "unreliable_annotators": score(
            quality.loc[quality["flagged"].astype(bool), frames.ANNOTATOR].astype(str),
            set(truth.unreliable_annotators) & voters,
        ),
    }


def combine_scores(per_version: Iterable[dict[str, dict]]) -> dict[str, dict]:
    """Sum the counts of several versions (days) and recompute the ratios."""
    totals = {stage: [0, 0, 0] for stage in STAGES}
    for scores in per_version:
        for stage in STAGES:
            for position, count in enumerate(("tp", "fp", "fn")):
                totals[stage][position] += scores[stage][count]
    return {stage: _with_ratios(*counts) for stage, counts in totals.items()}


def evaluate_feed(truth_root: Path, curated_root: Path, dataset: str, days: Iterable[str]) -> dict:
    """Scores per day (``curated/<dataset>/<day>/``) and their total under the key "total"."""
    per_day = {
        day: evaluate_version(
            load_truth(truth_root, dataset, day), Path(curated_root) / dataset / day
        )
        for day in days
    }
    return {**per_day, "total": combine_scores(per_day.values())}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_scores(scores: dict[str, dict]) -> str:
    """A compact console table, one line per stage."""
    width = max(len(stage) for stage in STAGES)
    header = f"{'stage':<{width}}  {'tp':>6} {'fp':>6} {'fn':>6}  {'precision':>9} {'recall':>7}"
    lines = [header, "-" * len(header)]
    for stage in STAGES:
        s = scores[stage]
        lines.append(
            f"{stage:<{width}}  {s['tp']:>6} {s['fp']:>6} {s['fn']:>6}  "
            f"{_ratio(s['precision']):>9} {_ratio(s['recall']):>7}"
        )
    return "\n".join(lines)

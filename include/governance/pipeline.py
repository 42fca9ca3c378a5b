"""The nightly governance run of one dataset for one day: where a day's run reads and writes
(``DayRun``), the data stages that ``governance.stages.STAGES`` declares (the version's stages,
gate and publish, are in ``governance.version``), and ``run_day``, which runs them all in one
process (for benchmarks, tests and the command line). Nothing here knows about Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance import frames as F
from governance.audit import run_audit
from governance.contracts import DAY_PATTERN, Contract, data_root
from governance.dedup import DedupConfig, deduplicate
from governance.errors import DaySkipped, EmptyPartitionError, InvalidInputError
from governance.history import Ledger, Settlement, history_digest
from governance.ingest import read_partition
from governance.layout import DatasetLayout
from governance.manifest import read_version_manifest
from governance.privacy import masked_column
from governance.privacy import scan as scan_pii
from governance.publish import MANIFEST
from governance.reasons import Reason, ReasonKind
from governance.split import assign_splits, split_sizes
from governance.stages import STAGES, Stage, stage_named
from governance.tables import write_parquet

A_DAY = re.compile(DAY_PATTERN)
INDEX_TABLE = "index"
PUBLISHED_COLUMNS = [*F.ITEM_COLUMNS, F.CLUSTER_ID, F.SPLIT]


@dataclass(frozen=True)
class DayRun:
    """Where one day's run of one dataset reads and writes, and who asked for it."""

    contract: Contract
    day: str
    root: Path = field(default_factory=data_root)
    run_id: str = "manual"
    dry_run: bool = False
    lineage: dict[str, Any] = field(default_factory=dict)
    stages: tuple[Stage, ...] = STAGES

    def __post_init__(self) -> None:
        if not A_DAY.match(self.day):
            raise InvalidInputError(f"day must be YYYY-MM-DD, got {self.day!r}")

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def layout(self) -> DatasetLayout:
        return DatasetLayout(self.root, self.name)

    @property
    def landing_dir(self) -> Path:
        return self.layout.landing(self.day)

    @property
    def curated_root(self) -> Path:
        return self.layout.curated

    @property
    def version_dir(self) -> Path:
        return self.curated_root / self.day

    @property
    def unpublished_dir(self) -> Path:
        """Where a dry run or a version the gate refused leaves its report and tables."""
        return self.layout.unpublished(self.day)

    @property
    def ledger(self) -> Ledger:
        """The dataset's settled days; every write of a version happens under its lock."""
        return Ledger(self.root, self.name, self.contract.start_date)

    @property
    def withdrawn_dir(self) -> Path:
        """Where a published version goes when a rerun of its day is refused by the gate."""
        return self.layout.withdrawn

    @property
    def work_dir(self) -> Path:
        return self.layout.work(self.day, self.run_id)

    def work(self, name: str) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir / name


def save_table(run: DayRun, name: str, frame: pd.DataFrame) -> None:
    """A table a stage hands to the stages after it (in the run's work folder)."""
    write_parquet(frame, run.work(f"{name}.parquet"))


def table_file(run: DayRun, name: str, before: str | None = None) -> Path:
    """Where work table ``name`` is, as the stages before ``before`` (all stages when None)
    left it: the latest revision of it, else the table as written."""
    stages = run.stages
    if before is not None:
        stages = stages[: stages.index(stage_named(before, stages))]
    for stage in reversed(stages):
        if name in stage.revises:
            return run.work(f"{name}@{stage.name}.parquet")
    return run.work(f"{name}.parquet")


def load_table(run: DayRun, name: str, before: str | None = None) -> pd.DataFrame:
    return pd.read_parquet(table_file(run, name, before))


def save_revision(run: DayRun, stage: str, name: str, frame: pd.DataFrame) -> None:
    """``stage``'s revision of an earlier work table (one its ``revises`` declares)."""
    if name not in stage_named(stage, run.stages).revises:
        raise LookupError(f"stage {stage!r} does not declare that it revises {name!r}")
    write_parquet(frame, run.work(f"{name}@{stage}.parquet"))


def save_summary(run: DayRun, name: str, payload: dict[str, Any]) -> None:
    run.work(f"{name}.json").write_text(json.dumps(payload, default=str, sort_keys=True))


def load_summary(run: DayRun, name: str) -> dict[str, Any]:
    return json.loads(run.work(f"{name}.json").read_text())


def kept_items(run: DayRun, stage: str) -> pd.DataFrame:
    """The day's items less those that the stages before ``stage`` quarantined as whole items."""
    items = load_table(run, "items", before=stage)
    position = run.stages.index(stage_named(stage, run.stages))
    dropped = [
        load_table(run, earlier.quarantine, before=stage)[F.ITEM_ID]
        for earlier in run.stages[:position]
        if earlier.quarantine and earlier.quarantines_items
    ]
    if dropped:
        items = items[~items[F.ITEM_ID].isin(pd.concat(dropped).dropna())]
    return items.reset_index(drop=True)


def quarantine_items(
    run: DayRun, stage: str, items: pd.DataFrame, reasons: Sequence[Sequence[Reason]]
) -> dict[str, Any]:
    """Write ``stage``'s quarantine table: the items with at least one reason (``reasons`` is
    aligned with ``items``). Rerunning the stage rewrites the same table, and the items stay in
    ``items`` (``kept_items`` drops them), so a retried task quarantines the same rows."""
    table = stage_named(stage, run.stages).quarantine
    if table is None:
        raise LookupError(f"stage {stage!r} declares no quarantine table")
    if len(reasons) != len(items):
        raise ValueError(f"{len(reasons)} reason lists for {len(items)} items")
    rejected = np.fromiter((bool(row) for row in reasons), dtype=bool, count=len(reasons))
    items = items.reset_index(drop=True)
    refused = [row for row, keep in zip(reasons, rejected, strict=True) if keep]
    quarantine = F.quarantined_items(items[rejected], stage, refused)
    save_table(run, table, quarantine)
    return {
        "items": len(items),
        "quarantined_items": int(rejected.sum()),
        "quarantined": int(quarantine[F.N_SOURCE_ROWS].sum()),
    }


def published_versions(curated_root: Path, before: str | None = None) -> list[str]:
    """Days with a complete, published version (a manifest that says so), oldest first."""
    if not curated_root.exists():
        return []
    days = []
    for child in sorted(curated_root.iterdir()):
        if not (A_DAY.match(child.name) and (child / MANIFEST).exists()):
            continue
        if before is not None and child.name >= before:
            continue
        if read_version_manifest(child).published:
            days.append(child.name)
    return days


def load_history(run: DayRun) -> tuple[pd.DataFrame | None, list[dict[str, Any]]]:
    """Everything settled before this day: the cross-day dedup index and the recorded history.

    Waits for nothing: it fails (retryably) while an earlier day is unsettled or stale, so a
    day's result never depends on which other days happen to be done. Read under the ledger's
    lock, so the index matches the history it is recorded with.
    """
    with run.ledger.lock():
        entries = run.ledger.require_settled(run.day)
        days = [e["version"] for e in entries if e["status"] == Settlement.PUBLISHED]
        parts = [pd.read_parquet(run.curated_root / d / f"{INDEX_TABLE}.parquet") for d in days]
    if not parts:
        return None, entries
    return pd.concat(parts, ignore_index=True), entries


def published_days(entries: list[dict[str, Any]]) -> list[str]:
    return [e["version"] for e in entries if e["status"] == Settlement.PUBLISHED]


def split_registry(history: pd.DataFrame | None) -> pd.DataFrame:
    """Which published item went to which split: all that later stages need of the history,
    saved once so they do not read every earlier version again."""
    columns = [F.ITEM_ID, F.LABEL, F.SPLIT]
    if history is None:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    return history[columns]


def settle_empty_day(run: DayRun, error: EmptyPartitionError) -> DaySkipped:
    """An empty partition the contract allows (``landing.on_empty: skip``): the day settles as
    skipped with the reason (a dry run settles nothing), and the run stops publishing nothing."""
    reason = f"empty partition: {error}"
    if run.dry_run:
        return DaySkipped(f"{run.name} {run.day} would settle as skipped (dry run): {reason}")
    run.ledger.skip(run.day, reason, run_id=run.run_id)
    return DaySkipped(f"{run.name} {run.day} settled as skipped: {reason}")


def stage_ingest(run: DayRun) -> dict[str, Any]:
    """Read and validate the day's files; every rejected record lands in quarantine."""
    try:
        result = read_partition(run.contract, run.landing_dir)
    except EmptyPartitionError as error:
        if run.contract.landing.on_empty != "skip":
            raise
        raise settle_empty_day(run, error) from error
    save_table(run, "items", result.items)
    save_table(run, "annotations", result.annotations)
    save_table(run, "quarantine_ingest", result.quarantine)
    summary = {
        "rows_in": int(result.rows_in),
        "items": len(result.items),
        "quarantined": int(result.quarantine[F.N_SOURCE_ROWS].sum()),
        "files": result.files,
        "label_mapping": result.label_mapping,
        "warnings": result.warnings,
        "hygiene": result.hygiene.model_dump(),
    }
    save_summary(run, "ingest", summary)
    return summary


def stage_privacy(run: DayRun) -> dict[str, Any]:
    """Personal data and secrets: every item's text and every ingest quarantine preview are
    scanned; masked values are replaced for every later stage and table, items holding an
    entity the contract quarantines are quarantined (their preview masked), and only counts and
    spans are kept of what was found."""
    spec = run.contract.privacy
    items = kept_items(run, "privacy")
    found = scan_pii(items[F.TEXT], spec)
    items[F.TEXT] = masked_column(items[F.TEXT], found)
    save_revision(run, "privacy", "items", items)
    held = found.quarantined_rows()
    column = run.contract.text.column
    reasons = [
        [
            Reason(ReasonKind.PRIVACY, f"holds {entity}", column, f"privacy.{entity}: quarantine")
            for entity in held.get(row, [])
        ]
        for row in range(len(items))
    ]
    summary = quarantine_items(run, "privacy", items, reasons)
    save_table(run, "pii_findings", found.table(items[F.ITEM_ID].tolist()))
    rejected = load_table(run, "quarantine_ingest", before="privacy")
    in_previews = scan_pii(rejected[F.RAW], spec)
    rejected[F.RAW] = masked_column(rejected[F.RAW], in_previews)
    save_revision(run, "privacy", "quarantine_ingest", rejected)
    summary = {
        **summary,
        "items_with_pii": found.rows_with_findings,
        "pii_rate": found.rows_with_findings / len(items) if len(items) else 0.0,
        "entities": found.counts(),
        "actions": found.counts_by_action(),
        "quarantine_previews": in_previews.counts(),
        "policy": spec.policy(),
    }
    save_summary(run, "privacy", summary)
    return summary


def stage_dedup(run: DayRun) -> dict[str, Any]:
    """Exact and near duplicates within the day and against every published day."""
    items = kept_items(run, "dedup")
    history, entries = load_history(run)
    result = deduplicate(items, history, DedupConfig.from_contract(run.contract.dedup))
    save_table(run, "assignments", result.assignments)
    save_table(run, "duplicates", result.duplicates)
    save_table(run, "conflicts", result.conflicts)
    save_table(run, "quarantine_dedup", result.quarantine)
    save_table(run, "dedup_index", result.index)
    save_table(run, "registry", split_registry(history))
    summary = {**result.stats, "history_versions": published_days(entries)}
    save_summary(run, "dedup", summary)
    save_summary(run, "history", recorded_history(run, entries))
    return summary


def recorded_history(run: DayRun, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the manifest records of the history a day was computed from."""
    return {"origin": run.ledger.origin, "versions": entries, "digest": history_digest(entries)}


def stage_split(run: DayRun) -> dict[str, Any]:
    """Assign every remaining item to train/val/test, whole clusters together."""
    items = kept_items(run, "split")
    assignments = load_table(run, "assignments")
    kept = items.merge(
        assignments[[F.ITEM_ID, F.CLUSTER_ID, "kept", "history_split"]],
        on=F.ITEM_ID,
        how="left",
        validate="one_to_one",
    )
    kept = kept[kept["kept"].fillna(False).astype(bool)]
    history = load_table(run, "registry")
    kept = kept.reset_index(drop=True)
    kept[F.SPLIT] = assign_splits(
        kept, run.contract.split.fractions, history, salt=run.contract.split.salt
    )
    save_table(run, "splits", kept[PUBLISHED_COLUMNS])
    sizes = split_sizes(kept)
    save_summary(run, "split", sizes)
    return sizes


def previous_version(run: DayRun) -> tuple[pd.DataFrame | None, str | None]:
    """The items of the latest version published before this day (the one drift compares to)."""
    days = load_summary(run, "dedup")["history_versions"]
    if not days:
        return None, None
    folder = run.curated_root / days[-1]
    parts = [pd.read_parquet(folder / f"{s}.parquet", columns=[F.TEXT, F.LABEL]) for s in F.SPLITS]
    return pd.concat(parts, ignore_index=True), days[-1]


def earlier_votes(run: DayRun) -> pd.DataFrame | None:
    """Votes of the latest ``audit.consensus_window`` versions published before this day (the
    ones dedup read, so a rerun of an old day reads the same)."""
    window = run.contract.audit.consensus_window
    days = load_summary(run, "dedup")["history_versions"][-window:] if window else []
    parts = [
        pd.read_parquet(path, columns=[F.ITEM_ID, F.ANNOTATOR, F.LABEL])
        for day in days
        if (path := run.curated_root / day / "annotations.parquet").exists()
    ]
    return pd.concat(parts, ignore_index=True) if parts else None


def stage_audit(run: DayRun) -> dict[str, Any]:
    """Consensus, agreement, annotator quality, suspected label errors and drift."""
    splits = load_table(run, "splits")
    previous, version = previous_version(run)
    annotations = load_table(run, "annotations")
    result = run_audit(run.contract, splits, annotations, previous, version, earlier_votes(run))
    for name, table in result.tables.items():
        save_table(run, f"audit_{name}", table)
    save_summary(run, "audit", result.summary)
    return result.summary


def run_day(run: DayRun) -> dict[str, Any]:
    """Every stage of ``run.stages`` in order, in one process; the last one's result (the
    published manifest), or the reason when the day settled as skipped."""
    result: dict[str, Any] = {}
    for stage in run.stages:
        try:
            result = stage(run)
        except DaySkipped as skipped:
            return {"version": run.day, "state": "skipped", "reason": str(skipped)}
    return result

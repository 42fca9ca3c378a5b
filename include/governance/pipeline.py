"""The nightly governance run of one dataset for one day: the functions of the stages that
``governance.stages.STAGES`` declares, and ``run_day``, which runs them in one process (for
benchmarks, tests and the command line). Nothing here knows about Airflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance import frames as F
from governance import metrics
from governance.audit import AUDIT_TABLES, run_audit
from governance.contracts import DAY_PATTERN, Contract, data_root
from governance.dedup import DedupConfig, deduplicate
from governance.errors import GateFailedError, InvalidInputError
from governance.gate import evaluate_gate
from governance.hashing import sha256_file
from governance.history import (
    DayRecord,
    Ledger,
    Settlement,
    data_digest,
    describe_difference,
    history_digest,
)
from governance.ingest import read_partition
from governance.layout import DatasetLayout
from governance.manifest import validated
from governance.publish import (
    MANIFEST,
    check_conservation,
    publish_version,
    read_manifest,
)
from governance.reasons import Reason
from governance.report import render_report
from governance.split import assign_splits, split_sizes
from governance.stages import STAGES, Stage, quarantine_tables, stage_named
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


def load_table(run: DayRun, name: str) -> pd.DataFrame:
    return pd.read_parquet(run.work(f"{name}.parquet"))


def save_summary(run: DayRun, name: str, payload: dict[str, Any]) -> None:
    run.work(f"{name}.json").write_text(json.dumps(payload, default=str, sort_keys=True))


def load_summary(run: DayRun, name: str) -> dict[str, Any]:
    return json.loads(run.work(f"{name}.json").read_text())


def kept_items(run: DayRun, stage: str) -> pd.DataFrame:
    """The day's items less those that the stages before ``stage`` quarantined as whole items."""
    items = load_table(run, "items")
    position = run.stages.index(stage_named(stage, run.stages))
    dropped = [
        load_table(run, earlier.quarantine)[F.ITEM_ID]
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
        if read_manifest(child).get("published", False):
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


def stage_ingest(run: DayRun) -> dict[str, Any]:
    """Read and validate the day's files; every rejected record lands in quarantine."""
    result = read_partition(run.contract, run.landing_dir)
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
    }
    save_summary(run, "ingest", summary)
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


def stage_audit(run: DayRun) -> dict[str, Any]:
    """Consensus, agreement, annotator quality, suspected label errors and drift."""
    splits = load_table(run, "splits")
    previous, version = previous_version(run)
    result = run_audit(run.contract, splits, load_table(run, "annotations"), previous, version)
    for name, table in result.tables.items():
        save_table(run, f"audit_{name}", table)
    save_summary(run, "audit", result.summary)
    return result.summary


def _split_of_kept(
    duplicates: pd.DataFrame, splits: pd.DataFrame, history: pd.DataFrame | None
) -> pd.Series:
    registry = splits.set_index(F.ITEM_ID)[F.SPLIT]
    if history is not None and not history.empty:
        old = history.drop_duplicates(F.ITEM_ID).set_index(F.ITEM_ID)[F.SPLIT]
        registry = pd.concat([old[~old.index.isin(registry.index)], registry])
    return duplicates[F.KEPT_ITEM_ID].map(registry).astype(object)


def build_tables(run: DayRun) -> dict[str, pd.DataFrame]:
    """The files of the published version, in a deterministic order."""
    splits = load_table(run, "splits")
    history = load_table(run, "registry")
    duplicates = load_table(run, "duplicates")
    duplicates[F.SPLIT] = _split_of_kept(duplicates, splits, history)
    texts = load_table(run, "items").set_index(F.ITEM_ID)[F.TEXT]
    duplicates[F.TEXT] = duplicates[F.ITEM_ID].map(texts)
    quarantine = pd.concat(
        [load_table(run, name) for name in quarantine_tables(run.stages)], ignore_index=True
    )
    annotations = load_table(run, "annotations").merge(
        splits[[F.ITEM_ID, F.SPLIT]], on=F.ITEM_ID, how="inner"
    )
    index = load_table(run, "dedup_index").merge(
        splits[[F.ITEM_ID, F.SPLIT]], on=F.ITEM_ID, how="inner", validate="one_to_one"
    )
    index["version"] = run.day
    tables = {split: splits[splits[F.SPLIT] == split] for split in F.SPLITS}
    tables.update(
        quarantine=quarantine,
        duplicates=duplicates,
        conflicts=load_table(run, "conflicts"),
        annotations=annotations,
        index=index,
    )
    tables.update({name: load_table(run, f"audit_{name}") for name in AUDIT_TABLES})
    return tables


def conservation(run: DayRun, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    rows_in = load_summary(run, "ingest")["rows_in"]
    buckets = {
        "quarantined": tables["quarantine"][F.N_SOURCE_ROWS].sum(),
        "duplicates": tables["duplicates"][F.N_SOURCE_ROWS].sum(),
        **{split: tables[split][F.N_SOURCE_ROWS].sum() for split in F.SPLITS},
    }
    return check_conservation(rows_in, buckets)


def quarantine_counts(quarantine: pd.DataFrame) -> dict[str, Any]:
    """Quarantined source rows in total, per stage, per reason key and kind, and per structured
    reason (stage, kind, check, column); a row that broke several rules counts under each."""
    reasons = F.reason_totals(quarantine)
    by_stage = quarantine.groupby(F.STAGE)[F.N_SOURCE_ROWS].sum()

    def totals(column: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in reasons.groupby(column)["rows"].sum().items()}

    return {
        "total": int(quarantine[F.N_SOURCE_ROWS].sum()),
        "by_stage": {str(k): int(v) for k, v in by_stage.items()},
        "by_reason": totals("key"),
        "by_kind": totals("kind"),
        "reasons": [
            {**row, "column": row["column"] or None, "rows": int(row["rows"])}
            for row in reasons.drop(columns="key").to_dict("records")
        ],
    }


def build_manifest(run: DayRun, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    ingest = load_summary(run, "ingest")
    dedup = load_summary(run, "dedup")
    quarantine = tables["quarantine"]
    kinds = tables["duplicates"][F.DUPLICATE_KIND].value_counts()
    manifest = {
        "dataset": run.name,
        "version": run.day,
        "published": not run.dry_run,
        "dry_run": run.dry_run,
        "created_by": {"run_id": run.run_id, **run.lineage},
        "contract": run.contract.model_dump(mode="json"),
        "conservation": conservation(run, tables),
        "counts": {
            "rows_in": ingest["rows_in"],
            "quarantined": quarantine_counts(quarantine),
            "duplicates": {"exact": int(kinds.get("exact", 0)), "near": int(kinds.get("near", 0))},
            "conflicts": len(tables["conflicts"]),
            "splits": split_sizes(pd.concat([tables[s] for s in F.SPLITS])),
        },
        "label_mapping": ingest["label_mapping"],
        "warnings": ingest["warnings"],
        "dedup": dedup,
        "thresholds": {
            "near_duplicate_jaccard": run.contract.dedup.near_threshold,
            **run.contract.gate.model_dump(),
        },
        "inputs": ingest["files"],
        "audit": load_summary(run, "audit"),
        "history": load_summary(run, "history"),
        "state": "current",
    }
    manifest["gate"] = evaluate_gate(manifest, run.contract)
    return manifest


def write_version(
    target: Path, tables: dict[str, pd.DataFrame], manifest: dict[str, Any]
) -> dict[str, Any]:
    """The tables, the review queue as CSV and the HTML report, then the manifest, atomically;
    a manifest that is not what readers rely on stops the run before anything is written."""
    validated(manifest, str(target / MANIFEST))
    files = {
        "report.html": render_report(manifest, tables).encode("utf-8"),
        "review_queue.csv": tables["review_queue"].to_csv(index=False).encode("utf-8"),
    }
    return publish_version(target, tables, manifest, files)


def stage_gate(run: DayRun) -> dict[str, Any]:
    """Decide whether the version is fit to train on.

    A refused version is still written, with its report and the decision, where reviewers look
    for it (``unpublished/``), the day settles as refused (a rerun refused after a publication
    withdraws the published version), and the run stops with every failed threshold in one message.
    """
    tables = build_tables(run)
    manifest = build_manifest(run, tables)
    decision = manifest["gate"]
    if not run.dry_run:
        metrics.emit(metrics.governance_figures(manifest))
    if decision["status"] == "failed" and not run.dry_run:
        with run.ledger.lock():
            state, why = history_state(run, manifest["history"])
            refused = {**manifest, "published": False, "state": state, "stale_reason": why}
            written = write_version(run.unpublished_dir, tables, refused)
            withdraw_published(run)
            settle(run, written, Settlement.REFUSED, str(Settlement.REFUSED))
        shutil.rmtree(run.work_dir, ignore_errors=True)
        raise GateFailedError(decision["message"])
    return decision


def withdraw_published(run: DayRun) -> None:
    """Move the day's published version aside (to ``withdrawn/``), kept for lineage."""
    record = run.ledger.get(run.day)
    if record is None or record.status != Settlement.PUBLISHED or not run.version_dir.exists():
        return
    target = run.withdrawn_dir / f"{run.day}-{record.digest[:12]}"
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(run.version_dir, target)


def history_state(run: DayRun, recorded: dict[str, Any]) -> tuple[str, str | None]:
    """Whether the history the day was computed from is still what is settled before it."""
    current = run.ledger.history(run.day)
    waiting = run.ledger.unsettled(run.day)
    if waiting:
        return "stale", f"{', '.join(waiting[:5])} not settled or stale"
    if recorded["digest"] != history_digest(current):
        return "stale", describe_difference(recorded["versions"], current)
    return "current", None


def settle(run: DayRun, manifest: dict[str, Any], status: Settlement, digest: str) -> list[str]:
    """Record how the day settled (inside the ledger's lock); returns later days now stale."""
    folder = run.version_dir if status == Settlement.PUBLISHED else run.unpublished_dir
    return run.ledger.settle(
        DayRecord(
            day=run.day,
            status=status,
            digest=digest,
            history_digest=manifest["history"]["digest"],
            stale=manifest.get("state") == "stale",
            manifest_sha256=sha256_file(folder / MANIFEST),
            run_id=run.run_id,
            reason=manifest.get("stale_reason") or "",
        )
    )


def stage_publish(run: DayRun) -> dict[str, Any]:
    """Check conservation, then write the version atomically: to ``curated/`` when the gate
    passed, to ``unpublished/`` on a dry run.

    Publishing settles the day. A version whose history changed while it ran is published as
    stale; later days whose history this publication changed are marked stale (returned under
    ``marked_stale``, not written to the manifest) until they are recomputed in order.
    """
    tables = build_tables(run)
    manifest = build_manifest(run, tables)
    if manifest["gate"]["status"] != "passed" and not run.dry_run:
        raise GateFailedError(manifest["gate"]["message"])
    marked: list[str] = []
    with run.ledger.lock():
        if run.dry_run:
            manifest = write_version(run.unpublished_dir, tables, manifest)
        else:
            state, why = history_state(run, manifest["history"])
            manifest = {**manifest, "state": state, "stale_reason": why}
            manifest = write_version(run.version_dir, tables, manifest)
            digest = data_digest(manifest["outputs"])
            marked = settle(run, manifest, Settlement.PUBLISHED, digest)
    shutil.rmtree(run.work_dir, ignore_errors=True)
    return {**manifest, "marked_stale": marked}


def run_day(run: DayRun) -> dict[str, Any]:
    """Every stage of ``run.stages`` in order, in one process; the last one's result (the
    published manifest)."""
    result: dict[str, Any] = {}
    for stage in run.stages:
        result = stage(run)
    return result

"""The nightly governance run of one dataset for one day, stage by stage.

Each stage reads what the previous one left in the run's work folder and writes its own output
there, so an orchestrator can run the stages as separate, individually retried tasks, and a
benchmark or a test can run them in one process. Nothing here knows about Airflow.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from governance import frames as F
from governance import metrics
from governance.audit import AUDIT_TABLES, run_audit
from governance.contracts import Contract, data_root
from governance.dedup import DedupConfig, deduplicate
from governance.errors import GateFailedError
from governance.gate import evaluate_gate
from governance.ingest import read_partition
from governance.publish import (
    MANIFEST,
    check_conservation,
    publish_version,
    read_manifest,
)
from governance.report import render_report
from governance.split import assign_splits, split_sizes

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
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

    def __post_init__(self) -> None:
        if not DAY_PATTERN.match(self.day):
            raise ValueError(f"day must be YYYY-MM-DD, got {self.day!r}")

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing" / self.name / self.day

    @property
    def curated_root(self) -> Path:
        return self.root / "curated" / self.name

    @property
    def version_dir(self) -> Path:
        return self.curated_root / self.day

    @property
    def unpublished_dir(self) -> Path:
        """Where a dry run or a version the gate refused leaves its report and tables."""
        return self.root / "unpublished" / self.name / self.day

    @property
    def work_dir(self) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run_id)[:120]
        return self.root / "work" / self.name / self.day / slug

    def work(self, name: str) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir / name


def _save(run: DayRun, name: str, frame: pd.DataFrame) -> None:
    frame.reset_index(drop=True).to_parquet(run.work(f"{name}.parquet"), index=False)


def _load(run: DayRun, name: str) -> pd.DataFrame:
    return pd.read_parquet(run.work(f"{name}.parquet"))


def _save_json(run: DayRun, name: str, payload: dict[str, Any]) -> None:
    run.work(f"{name}.json").write_text(json.dumps(payload, default=str, sort_keys=True))


def _load_json(run: DayRun, name: str) -> dict[str, Any]:
    return json.loads(run.work(f"{name}.json").read_text())


def published_versions(curated_root: Path, before: str | None = None) -> list[str]:
    """Days with a complete, published version (a manifest that says so), oldest first."""
    if not curated_root.exists():
        return []
    days = []
    for child in sorted(curated_root.iterdir()):
        if not (DAY_PATTERN.match(child.name) and (child / MANIFEST).exists()):
            continue
        if before is not None and child.name >= before:
            continue
        if read_manifest(child).get("published", False):
            days.append(child.name)
    return days


def load_history(run: DayRun) -> tuple[pd.DataFrame | None, list[str]]:
    """Everything published before this day: the cross-day dedup index and split registry.

    Only earlier days count, so rerunning a day after later days were processed gives the
    same result as the first run.
    """
    days = published_versions(run.curated_root, before=run.day)
    if not days:
        return None, days
    parts = [pd.read_parquet(run.curated_root / d / f"{INDEX_TABLE}.parquet") for d in days]
    return pd.concat(parts, ignore_index=True), days


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
    _save(run, "items", result.items)
    _save(run, "annotations", result.annotations)
    _save(run, "quarantine_ingest", result.quarantine)
    summary = {
        "rows_in": int(result.rows_in),
        "items": len(result.items),
        "quarantined": int(result.quarantine[F.N_SOURCE_ROWS].sum()),
        "files": result.files,
        "label_mapping": result.label_mapping,
        "warnings": result.warnings,
    }
    _save_json(run, "ingest", summary)
    return summary


def stage_dedup(run: DayRun) -> dict[str, Any]:
    """Exact and near duplicates within the day and against every published day."""
    items = _load(run, "items")
    history, days = load_history(run)
    result = deduplicate(items, history, DedupConfig.from_contract(run.contract.dedup))
    _save(run, "assignments", result.assignments)
    _save(run, "duplicates", result.duplicates)
    _save(run, "conflicts", result.conflicts)
    _save(run, "quarantine_dedup", result.quarantine)
    _save(run, "dedup_index", result.index)
    _save(run, "registry", split_registry(history))
    summary = {**result.stats, "history_versions": days}
    _save_json(run, "dedup", summary)
    return summary


def stage_split(run: DayRun) -> dict[str, Any]:
    """Assign every remaining item to train/val/test, whole clusters together."""
    items = _load(run, "items")
    assignments = _load(run, "assignments")
    quarantined = set(_load(run, "quarantine_dedup")[F.ITEM_ID].dropna())
    kept = items.merge(
        assignments[[F.ITEM_ID, F.CLUSTER_ID, "kept", "history_split"]],
        on=F.ITEM_ID,
        how="left",
        validate="one_to_one",
    )
    kept = kept[kept["kept"].fillna(False).astype(bool) & ~kept[F.ITEM_ID].isin(quarantined)]
    history = _load(run, "registry")
    kept = kept.reset_index(drop=True)
    kept[F.SPLIT] = assign_splits(
        kept, run.contract.split.fractions, history, salt=run.contract.split.salt
    )
    _save(run, "splits", kept[PUBLISHED_COLUMNS])
    sizes = split_sizes(kept)
    _save_json(run, "split", sizes)
    return sizes


def previous_version(run: DayRun) -> tuple[pd.DataFrame | None, str | None]:
    """The items of the latest version published before this day (the one drift compares to)."""
    days = _load_json(run, "dedup")["history_versions"]
    if not days:
        return None, None
    folder = run.curated_root / days[-1]
    parts = [pd.read_parquet(folder / f"{s}.parquet", columns=[F.TEXT, F.LABEL]) for s in F.SPLITS]
    return pd.concat(parts, ignore_index=True), days[-1]


def stage_audit(run: DayRun) -> dict[str, Any]:
    """Consensus, agreement, annotator quality, suspected label errors and drift."""
    splits = _load(run, "splits")
    previous, version = previous_version(run)
    result = run_audit(run.contract, splits, _load(run, "annotations"), previous, version)
    for name, table in result.tables.items():
        _save(run, f"audit_{name}", table)
    _save_json(run, "audit", result.summary)
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
    splits = _load(run, "splits")
    history = _load(run, "registry")
    duplicates = _load(run, "duplicates")
    duplicates[F.SPLIT] = _split_of_kept(duplicates, splits, history)
    texts = _load(run, "items").set_index(F.ITEM_ID)[F.TEXT]
    duplicates[F.TEXT] = duplicates[F.ITEM_ID].map(texts)
    quarantine = pd.concat(
        [_load(run, "quarantine_ingest"), _load(run, "quarantine_dedup")], ignore_index=True
    )
    annotations = _load(run, "annotations").merge(
        splits[[F.ITEM_ID, F.SPLIT]], on=F.ITEM_ID, how="inner"
    )
    index = _load(run, "dedup_index").merge(
        splits[[F.ITEM_ID, F.SPLIT]], on=F.ITEM_ID, how="inner", validate="one_to_one"
    )
    index["version"] = run.day
    tables = {split: splits[splits[F.SPLIT] == split] for split in F.SPLITS}
    tables.update(
        quarantine=quarantine,
        duplicates=duplicates,
        conflicts=_load(run, "conflicts"),
        annotations=annotations,
        index=index,
    )
    tables.update({name: _load(run, f"audit_{name}") for name in AUDIT_TABLES})
    return tables


def conservation(run: DayRun, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    rows_in = _load_json(run, "ingest")["rows_in"]
    buckets = {
        "quarantined": tables["quarantine"][F.N_SOURCE_ROWS].sum(),
        "duplicates": tables["duplicates"][F.N_SOURCE_ROWS].sum(),
        **{split: tables[split][F.N_SOURCE_ROWS].sum() for split in F.SPLITS},
    }
    return check_conservation(rows_in, buckets)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Quarantined source rows per reason; a row failing several checks counts under each.

    Validation reasons name a column and a check, stable for a contract, so they are kept whole;
    the others keep only their kind, since their detail differs from row to row.
    """
    parts = quarantine.assign(reason=quarantine[F.REASONS].astype(str).str.split("; "))
    parts = parts.explode("reason")
    kind = parts["reason"].str.split(":").str[0]
    key = parts["reason"].where(parts[F.STAGE] == "validate", kind)
    counts = parts.groupby(key)[F.N_SOURCE_ROWS].sum().sort_index()
    return {str(k): int(v) for k, v in counts.items()}


def build_manifest(run: DayRun, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    ingest = _load_json(run, "ingest")
    dedup = _load_json(run, "dedup")
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
            "quarantined": {
                "total": int(quarantine[F.N_SOURCE_ROWS].sum()),
                "by_stage": {
                    k: int(v) for k, v in quarantine.groupby(F.STAGE)[F.N_SOURCE_ROWS].sum().items()
                },
                "by_reason": reason_counts(quarantine),
            },
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
        "audit": _load_json(run, "audit"),
    }
    manifest["gate"] = evaluate_gate(manifest, run.contract)
    return manifest


def write_version(
    target: Path, tables: dict[str, pd.DataFrame], manifest: dict[str, Any]
) -> dict[str, Any]:
    """The tables, the review queue as CSV and the HTML report, then the manifest, atomically."""
    files = {
        "report.html": render_report(manifest, tables).encode("utf-8"),
        "review_queue.csv": tables["review_queue"].to_csv(index=False).encode("utf-8"),
    }
    return publish_version(target, tables, manifest, files)


def stage_gate(run: DayRun) -> dict[str, Any]:
    """Decide whether the version is fit to train on.

    A refused version is still written, with its report and the decision, where reviewers look
    for it (``unpublished/``), and the run stops with every failed threshold in one message.
    """
    tables = build_tables(run)
    manifest = build_manifest(run, tables)
    decision = manifest["gate"]
    if not run.dry_run:
        metrics.emit(metrics.governance_figures(manifest))
    if decision["status"] == "failed" and not run.dry_run:
        write_version(run.unpublished_dir, tables, {**manifest, "published": False})
        shutil.rmtree(run.work_dir, ignore_errors=True)
        raise GateFailedError(decision["message"])
    return decision


def stage_publish(run: DayRun) -> dict[str, Any]:
    """Check conservation, then write the version atomically: to ``curated/`` when the gate
    passed, to ``unpublished/`` on a dry run."""
    tables = build_tables(run)
    manifest = build_manifest(run, tables)
    if manifest["gate"]["status"] != "passed" and not run.dry_run:
        raise GateFailedError(manifest["gate"]["message"])
    target = run.unpublished_dir if run.dry_run else run.version_dir
    manifest = write_version(target, tables, manifest)
    shutil.rmtree(run.work_dir, ignore_errors=True)
    return manifest


def run_day(run: DayRun) -> dict[str, Any]:
    """All stages in one process: for benchmarks, tests and the command line."""
    for stage in (stage_ingest, stage_dedup, stage_split, stage_audit, stage_gate):
        stage(run)
    return stage_publish(run)

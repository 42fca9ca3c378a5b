"""A day's version: its tables and manifest built from the work tables, the gate's decision on
it, and its atomic publication, which settles the day in the ledger (``stage_gate`` and
``stage_publish`` of the stage table).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from governance import frames as F
from governance import metrics
from governance.audit import AUDIT_TABLES
from governance.errors import GateFailedError
from governance.gate import evaluate_gate
from governance.hashing import sha256_file
from governance.history import (
    DayRecord,
    Settlement,
    data_digest,
    describe_difference,
    history_digest,
)
from governance.manifest import (
    MANIFEST,
    HistoryRead,
    VersionManifest,
    validated,
    validated_facts,
)
from governance.pipeline import DayRun, load_summary, load_table
from governance.publish import check_conservation, publish_version
from governance.report import render_report
from governance.split import split_sizes
from governance.stages import quarantine_tables
from governance.tables import spreadsheet_safe_csv


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
        pii_findings=load_table(run, "pii_findings"),
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


def build_manifest(run: DayRun, tables: dict[str, pd.DataFrame]) -> VersionManifest:
    """The night's figures, then the gate's decision on them."""
    ingest = load_summary(run, "ingest")
    dedup = load_summary(run, "dedup")
    quarantine = tables["quarantine"]
    kinds = tables["duplicates"][F.DUPLICATE_KIND].value_counts()
    facts = {
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
        "hygiene": ingest["hygiene"],
        "privacy": load_summary(run, "privacy"),
        "audit": load_summary(run, "audit"),
        "history": load_summary(run, "history"),
    }
    where = str(run.work_dir / MANIFEST)
    decision = evaluate_gate(validated_facts(facts, where), run.contract)
    return validated({**facts, "state": "current", "gate": decision.model_dump()}, where)


def write_version(
    run: DayRun, target: Path, tables: dict[str, pd.DataFrame], manifest: VersionManifest
) -> VersionManifest:
    """The tables, the review queue as CSV and the HTML report, then the manifest, atomically;
    the manifest written is the one read back."""
    written = manifest.written()
    detail = run.contract.audit.detail_annotators
    files = {
        "report.html": render_report(manifest, tables, detail_annotators=detail).encode("utf-8"),
        "review_queue.csv": spreadsheet_safe_csv(tables["review_queue"]).encode("utf-8"),
    }
    return validated(publish_version(target, tables, written, files), str(target / MANIFEST))


def stage_gate(run: DayRun) -> dict[str, Any]:
    """Decide whether the version is fit to train on.

    A refused version is still written, with its report and the decision, where reviewers look
    for it (``unpublished/``), the day settles as refused (a rerun refused after a publication
    withdraws the published version), and the run stops with every failed threshold in one message.
    """
    tables = build_tables(run)
    manifest = build_manifest(run, tables)
    decision = manifest.gate
    if not run.dry_run:
        metrics.emit(metrics.governance_figures(manifest))
    if decision.status == "failed" and not run.dry_run:
        with run.ledger.lock():
            state, why = history_state(run, manifest.history)
            refused = manifest.model_copy(
                update={"published": False, "state": state, "stale_reason": why}
            )
            written = write_version(run, run.unpublished_dir, tables, refused)
            withdraw_published(run)
            settle(run, written, Settlement.REFUSED, str(Settlement.REFUSED))
        shutil.rmtree(run.work_dir, ignore_errors=True)
        raise GateFailedError(decision.message)
    return decision.model_dump(mode="json")


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


def history_state(run: DayRun, recorded: HistoryRead) -> tuple[str, str | None]:
    """Whether the history the day was computed from is still what is settled before it."""
    current = run.ledger.history(run.day)
    waiting = run.ledger.unsettled(run.day)
    if waiting:
        return "stale", f"{', '.join(waiting[:5])} not settled or stale"
    if recorded.digest != history_digest(current):
        versions = [version.model_dump(exclude_unset=True) for version in recorded.versions]
        return "stale", describe_difference(versions, current)
    return "current", None


def settle(run: DayRun, manifest: VersionManifest, status: Settlement, digest: str) -> list[str]:
    """Record how the day settled (inside the ledger's lock); returns later days now stale."""
    folder = run.version_dir if status == Settlement.PUBLISHED else run.unpublished_dir
    return run.ledger.settle(
        DayRecord(
            day=run.day,
            status=status,
            digest=digest,
            history_digest=manifest.history.digest,
            stale=manifest.state == "stale",
            manifest_sha256=sha256_file(folder / MANIFEST),
            run_id=run.run_id,
            reason=manifest.stale_reason or "",
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
    if manifest.gate.status != "passed" and not run.dry_run:
        raise GateFailedError(manifest.gate.message)
    marked: list[str] = []
    with run.ledger.lock():
        if run.dry_run:
            manifest = write_version(run, run.unpublished_dir, tables, manifest)
        else:
            state, why = history_state(run, manifest.history)
            manifest = manifest.model_copy(update={"state": state, "stale_reason": why})
            manifest = write_version(run, run.version_dir, tables, manifest)
            digest = data_digest(manifest.written()["outputs"])
            marked = settle(run, manifest, Settlement.PUBLISHED, digest)
    shutil.rmtree(run.work_dir, ignore_errors=True)
    return {**manifest.written(), "marked_stale": marked}

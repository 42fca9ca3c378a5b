"""The training snapshot of a dataset version: every published day up to it, in one place.

Each daily version holds only that day's new items, and an item never changes split, so the
union of all versions up to V is the dataset as of V, and its test split is frozen: it only
grows, and nothing that was ever tested on moves into training. A fine-tune of V trains and
evaluates on this snapshot; it records which versions it holds and the hash of each one's
manifest, and is written atomically like a version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from governance import frames as F
from governance.errors import NonRetryableError
from governance.hashing import sha256_file
from governance.history import Ledger
from governance.layout import DatasetLayout
from governance.manifest import read_version_manifest
from governance.pipeline import published_versions
from governance.publish import MANIFEST, publish_version, read_manifest

SNAPSHOT_COLUMNS = [F.ITEM_ID, F.TEXT, F.LABEL, F.SPLIT]


class SnapshotError(NonRetryableError):
    """The requested version cannot be trained on (not published, or refused by the gate)."""


def snapshot_dir(root: Path, dataset: str, version: str) -> Path:
    return DatasetLayout(root, dataset).snapshot(version)


def trainable_versions(root: Path, dataset: str) -> list[str]:
    """Published versions with every day up to them settled and current: a stale version (its
    history changed since it was computed) is not offered until it is reconciled."""
    return Ledger(root, dataset).current_versions()


def latest_version(root: Path, dataset: str) -> str | None:
    days = trainable_versions(root, dataset)
    return days[-1] if days else None


def resolve_version(root: Path, dataset: str, requested: str | None) -> str:
    """The requested version, else the newest trainable one; refuse what cannot be trained on."""
    days = trainable_versions(root, dataset)
    version = requested or (days[-1] if days else None)
    if version is None:
        raise SnapshotError(f"{dataset}: no published version to fine-tune on yet")
    if version not in days:
        known = ", ".join(days[-5:]) or "none"
        if version in published_versions(DatasetLayout(root, dataset).curated):
            raise SnapshotError(
                f"{dataset}: version {version} or a day before it is stale or unsettled; "
                f"reconcile the dataset first (trainable: {known})"
            )
        raise SnapshotError(f"{dataset}: version {version} is not published (latest: {known})")
    gate = read_version_manifest(DatasetLayout(root, dataset).version(version)).gate
    if gate.status != "passed":
        raise SnapshotError(f"{dataset} {version}: the gate did not pass ({gate.status})")
    return version


def _version_entry(root: Path, folder: Path) -> dict[str, Any]:
    return {
        "version": folder.name,
        "path": str(folder.relative_to(root)),
        "manifest_sha256": sha256_file(folder / MANIFEST),
    }


def build_snapshot(root: Path, dataset: str, version: str | None) -> Path:
    """Write (or reuse, when the same versions are already in it) the snapshot of ``version``."""
    version = resolve_version(root, dataset, version)
    curated = DatasetLayout(root, dataset).curated
    days = [d for d in trainable_versions(root, dataset) if d <= version]
    entries = [_version_entry(root, curated / d) for d in days]
    target = snapshot_dir(root, dataset, version)
    if (target / MANIFEST).exists() and read_manifest(target).get("versions") == entries:
        return target
    tables = {
        split: pd.concat(
            [
                pd.read_parquet(curated / d / f"{split}.parquet", columns=SNAPSHOT_COLUMNS)
                for d in days
            ],
            ignore_index=True,
        ).dropna(subset=[F.LABEL])
        for split in F.SPLITS
    }
    manifest = {
        "dataset": dataset,
        "version": version,
        "contract": read_version_manifest(curated / version).contract,
        "versions": entries,
    }
    publish_version(target, tables, manifest)
    return target

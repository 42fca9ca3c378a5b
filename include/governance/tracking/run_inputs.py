"""What a fine-tune run trained on: the snapshot its manifest describes, one MLflow dataset
input per split (digests from the snapshot manifest's sha256), and the governance evidence of the
newest version (report, manifest, review queue) as artifacts."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from governance import frames as F
from governance.contracts import PROJECT_ROOT, data_root
from governance.hashing import sha256_file
from governance.publish import MANIFEST
from governance.tables import spreadsheet_safe_csv
from governance.tracking import (
    DIGEST_CHARS,
    GOVERNANCE_ARTIFACTS,
    INPUT_SHA256_TAG,
    REVIEW_QUEUE_TOP,
    SNAPSHOT_MANIFEST_ARTIFACT,
    TrackingError,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotVersion:
    version: str
    path: Path
    manifest_sha256: str


@dataclass(frozen=True)
class Snapshot:
    """A snapshot folder as its manifest describes it."""

    path: Path
    dataset: str
    version: str
    manifest_sha256: str
    versions: tuple[SnapshotVersion, ...]
    outputs: Mapping[str, Mapping[str, Any]]

    @property
    def newest(self) -> SnapshotVersion:
        for entry in self.versions:
            if entry.version == self.version:
                return entry
        raise TrackingError(
            f"{self.path / MANIFEST}: version {self.version} is not among its versions "
            f"{[entry.version for entry in self.versions]}"
        )


def resolve_version_path(raw: str) -> Path:
    """A version path from a snapshot manifest: absolute as is; relative to the data root, or
    else to the project root, whichever exists (the data root when neither does)."""
    path = Path(raw)
    if path.is_absolute():
        return path
    candidates = (data_root() / path, PROJECT_ROOT / path)
    return next((candidate for candidate in candidates if candidate.exists()), candidates[0])


def parse_snapshot(path: Path, manifest: Mapping[str, Any], sha256: str) -> Snapshot:
    where = path / MANIFEST
    try:
        versions = tuple(
            SnapshotVersion(
                str(entry["version"]),
                resolve_version_path(str(entry["path"])),
                str(entry["manifest_sha256"]),
            )
            for entry in manifest["versions"]
        )
        snapshot = Snapshot(
            path=path,
            dataset=str(manifest["dataset"]),
            version=str(manifest["version"]),
            manifest_sha256=sha256,
            versions=versions,
            outputs=dict(manifest["outputs"]),
        )
    except (KeyError, TypeError) as exc:
        raise TrackingError(
            f"{where}: not a snapshot manifest (needs dataset, version, versions[{{version, path, "
            f"manifest_sha256}}], outputs): {exc!r}"
        ) from exc
    if not versions:
        raise TrackingError(f"{where}: lists no versions")
    return snapshot


def read_snapshot(snapshot_dir: Path) -> Snapshot:
    """The snapshot's manifest, parsed, with the manifest file's own sha256."""
    path = Path(snapshot_dir)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise TrackingError(f"{manifest_path}: missing; {path} is not a snapshot")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TrackingError(f"{manifest_path}: not valid JSON: {exc}") from exc
    return parse_snapshot(path, manifest, sha256_file(manifest_path))


def _split_file(snapshot: Snapshot, split: str) -> tuple[Path, str]:
    """The split's parquet file and its sha256, checked against the manifest."""
    name = f"{split}.parquet"
    path = snapshot.path / name
    entry = snapshot.outputs.get(name)
    recorded = entry.get("sha256") if isinstance(entry, Mapping) else None
    if not path.is_file() or not recorded:
        raise TrackingError(f"{snapshot.path}: {name} is missing or has no sha256 in the manifest")
    actual = sha256_file(path)
    if actual != recorded:
        raise TrackingError(
            f"{path}: sha256 {actual} differs from {recorded} in the snapshot manifest"
        )
    return path, actual


def log_dataset_inputs(client: MlflowClient, run_id: str, snapshot_dir: Path) -> None:
    """One dataset input per split (context train/val/test), named ``<dataset>-<split>@<V>``,
    digest = the split file's sha256 (first 32 hex digits; the full one in an input tag)."""
    snapshot = read_snapshot(snapshot_dir)
    inputs = []
    for split in F.SPLITS:
        path, sha256 = _split_file(snapshot, split)
        frame = pd.read_parquet(path, columns=[F.TEXT, F.LABEL])
        with warnings.catch_warnings():
            # MLflow registers its local source for both "" and "file:" schemes and then
            # warns that a path matches both; either one records the same path
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
            dataset = from_pandas(
                frame,
                source=str(path.resolve()),
                targets=F.LABEL,
                name=f"{snapshot.dataset}-{split}@{snapshot.version}",
                digest=sha256[:DIGEST_CHARS],
            )
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, split), InputTag(INPUT_SHA256_TAG, sha256)]
        inputs.append(DatasetInput(DatasetEntity(**dataset.to_dict()), tags))
    client.log_inputs(run_id, datasets=inputs)


def review_queue_summary(queue: pd.DataFrame) -> dict[str, Any]:
    """Row count and counts per split, given and suggested label (the columns present)."""
    summary: dict[str, Any] = {"rows": len(queue)}
    for column in (F.SPLIT, "given_label", "suggested_label"):
        if column in queue.columns:
            counts = queue[column].astype(str).value_counts().sort_index()
            summary[f"by_{column}"] = {str(key): int(value) for key, value in counts.items()}
    return summary


def _log_review_queue(client: MlflowClient, run_id: str, queue_path: Path, folder: str) -> None:
    queue = pd.read_parquet(queue_path)
    if "rank" in queue.columns:
        queue = queue.sort_values("rank", kind="stable")
    top = spreadsheet_safe_csv(queue.head(REVIEW_QUEUE_TOP))
    client.log_text(run_id, top, f"{folder}/review_queue_top{REVIEW_QUEUE_TOP}.csv")
    client.log_dict(run_id, review_queue_summary(queue), f"{folder}/review_queue_summary.json")


def _log_renamed(client: MlflowClient, run_id: str, source: Path, artifact: str) -> None:
    """Log a file byte for byte under another name (log_artifact keeps the file's own name)."""
    folder, _, name = artifact.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / name
        shutil.copyfile(source, copy)
        client.log_artifact(run_id, str(copy), folder or None)


def log_version_artifacts(client: MlflowClient, run_id: str, snapshot_dir: Path) -> list[str]:
    """The snapshot manifest and the newest version's report, manifest and review queue summary,
    under ``governance/``; returns the artifact paths logged. A version without a report or
    review queue is logged without them (a warning says so)."""
    snapshot = read_snapshot(snapshot_dir)
    newest = snapshot.newest
    if not (newest.path / MANIFEST).is_file():
        raise TrackingError(f"{newest.path / MANIFEST}: missing; the newest version is not there")
    _log_renamed(client, run_id, snapshot.path / MANIFEST, SNAPSHOT_MANIFEST_ARTIFACT)
    logged = [SNAPSHOT_MANIFEST_ARTIFACT]
    folder = f"{GOVERNANCE_ARTIFACTS}/{newest.version}"
    for name in (MANIFEST, "report.html"):
        path = newest.path / name
        if path.is_file():
            client.log_artifact(run_id, str(path), folder)
            logged.append(f"{folder}/{name}")
        else:
            _log.warning("%s: missing, not logged with run %s", path, run_id)
    queue_path = newest.path / "review_queue.parquet"
    if queue_path.is_file():
        _log_review_queue(client, run_id, queue_path, folder)
        logged += [
            f"{folder}/review_queue_top{REVIEW_QUEUE_TOP}.csv",
            f"{folder}/review_queue_summary.json",
        ]
    else:
        _log.warning("%s: missing, no review queue summary for run %s", queue_path, run_id)
    return logged

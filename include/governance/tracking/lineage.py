"""Lineage of a registered model, walked back from an alias: the version, the run that made it,
the data it trained on, the Airflow task and the code, and every snapshot version's curated
manifest as it is on disk now.

    python -m governance.tracking.lineage lineage demo_reviews-classifier"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from governance.hashing import sha256_file
from governance.publish import MANIFEST
from governance.tracking import (
    CHAMPION,
    GOVERNANCE_ARTIFACTS,
    INPUT_SHA256_TAG,
    PROMOTION_REASON_TAG,
    PROMOTION_TAG,
    SNAPSHOT_MANIFEST_ARTIFACT,
    TAG_CODE_VERSION,
    TAG_DAG_ID,
    TAG_DAG_RUN_ID,
    TAG_DATASET,
    TAG_MANIFEST_SHA256,
    TAG_MODEL_MEMBERS,
    TAG_TASK_ID,
    TAG_TRY_NUMBER,
    TAG_VERSION,
    TrackingError,
    connect,
)
from governance.tracking.promotion import registered
from governance.tracking.run_inputs import SnapshotVersion, parse_snapshot


def _timestamp(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "unknown time"
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="seconds")


def _aliased_version(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    model = registered(client, name)
    if model is None:
        raise TrackingError(f"no registered model named {name!r}")
    aliases = model.aliases or {}
    if alias not in aliases:
        raise TrackingError(
            f"registered model {name!r} has no version with the alias {alias!r} "
            f"(aliases: {', '.join(sorted(aliases)) or 'none'})"
        )
    return client.get_model_version(name, str(aliases[alias]))


def _input_lines(run: Any) -> list[str]:
    lines = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        tags = {tag.key: tag.value for tag in item.tags}
        dataset = item.dataset
        try:
            source = json.loads(dataset.source).get("uri", dataset.source)
        except (ValueError, AttributeError):
            source = dataset.source
        rows = json.loads(dataset.profile).get("num_rows", "?") if dataset.profile else "?"
        lines.append(
            f"  input {tags.get(MLFLOW_DATASET_CONTEXT, '?')}: {dataset.name}, {rows} rows, "
            f"sha256 {tags.get(INPUT_SHA256_TAG, dataset.digest)}, from {source}"
        )
    return lines or ["  inputs: none logged"]


def _logged_snapshot(client: MlflowClient, run_id: str) -> dict[str, Any] | None:
    logged = {item.path for item in client.list_artifacts(run_id, GOVERNANCE_ARTIFACTS)}
    if SNAPSHOT_MANIFEST_ARTIFACT not in logged:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(run_id, SNAPSHOT_MANIFEST_ARTIFACT, tmp))
        return {"sha256": sha256_file(path), "manifest": json.loads(path.read_text("utf-8"))}


def _version_lines(entry: SnapshotVersion) -> list[str]:
    lines = [f"  version {entry.version} at {entry.path}"]
    manifest_path = entry.path / MANIFEST
    if not manifest_path.is_file():
        return [*lines, f"    MISSING: {manifest_path} does not exist; its sources are unknown"]
    actual = sha256_file(manifest_path)
    state = "matches" if actual == entry.manifest_sha256 else f"DIFFERS, now {actual}"
    lines.append(f"    manifest sha256 {entry.manifest_sha256} (on disk: {state})")
    inputs = json.loads(manifest_path.read_text(encoding="utf-8")).get("inputs") or []
    lines += [f"    source {item.get('name')} sha256 {item.get('sha256')}" for item in inputs]
    return lines if inputs else [*lines, "    sources: none recorded"]


def _snapshot_lines(client: MlflowClient, run_id: str, tagged_sha256: str | None) -> list[str]:
    logged = _logged_snapshot(client, run_id)
    if logged is None:
        return [f"snapshot: no {SNAPSHOT_MANIFEST_ARTIFACT} logged with run {run_id}"]
    check = "matches" if logged["sha256"] == tagged_sha256 else "DIFFERS from"
    try:
        snapshot = parse_snapshot(Path("<logged>"), logged["manifest"], logged["sha256"])
    except TrackingError as exc:
        return [f"snapshot: the logged manifest is unreadable: {exc}"]
    lines = [
        f"snapshot {snapshot.dataset} {snapshot.version}: {len(snapshot.versions)} versions; "
        f"logged manifest sha256 {logged['sha256']} {check} the run tag"
    ]
    for entry in snapshot.versions:
        lines += _version_lines(entry)
    return lines


def _member_lines(run_tags: dict[str, str]) -> list[str]:
    """An ensemble's members: the trial runs whose checkpoints the model runs."""
    members = json.loads(run_tags.get(TAG_MODEL_MEMBERS, "[]"))
    if len(members) < 2:
        return []
    listed = ", ".join(f"trial {m['trial']} (run {m['run_id']})" for m in members)
    return [f"ensemble of {len(members)}: {listed}"]


def lineage_chain(client: MlflowClient, name: str, alias: str = CHAMPION) -> list[str]:
    """From a model alias back to the source files: version, run, data, Airflow task, code,
    and every snapshot version's curated manifest as it is on disk now."""
    version = _aliased_version(client, name, alias)
    lines = [
        f"model {name}@{alias} -> version {version.version}",
        f"version {version.version}: created {_timestamp(version.creation_timestamp)} "
        f"by run {version.run_id}, source {version.source}",
    ]
    tags = version.tags or {}
    if PROMOTION_TAG in tags:
        lines.append(f"  promotion: {tags[PROMOTION_TAG]} ({tags.get(PROMOTION_REASON_TAG, '')})")
    if not version.run_id:
        return [*lines, "run: none recorded for this version"]
    run = client.get_run(version.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    scores = {key: value for key, value in run.data.metrics.items() if "macro_f1" in key}
    metrics = ", ".join(f"{key} {value:.4f}" for key, value in sorted(scores.items()))
    run_tags = run.data.tags
    lines += [
        f"run {run.info.run_id}: experiment {experiment.name} ({experiment.experiment_id}), "
        f"status {run.info.status}; {metrics or 'no macro_f1 metric logged'}",
        f"dataset {run_tags.get(TAG_DATASET, '?')} version {run_tags.get(TAG_VERSION, '?')}, "
        f"snapshot manifest sha256 {run_tags.get(TAG_MANIFEST_SHA256, '?')}",
        *_input_lines(run),
        f"airflow: dag {run_tags.get(TAG_DAG_ID, '?')}, run {run_tags.get(TAG_DAG_RUN_ID, '?')}, "
        f"task {run_tags.get(TAG_TASK_ID, '?')}, try {run_tags.get(TAG_TRY_NUMBER, '?')}",
        f"code: {run_tags.get(TAG_CODE_VERSION, 'not recorded')}",
        *_member_lines(run_tags),
    ]
    return lines + _snapshot_lines(client, run.info.run_id, run_tags.get(TAG_MANIFEST_SHA256))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m governance.tracking.lineage")
    commands = parser.add_subparsers(dest="command", required=True)
    lineage = commands.add_parser("lineage", help="trace a registered model back to its sources")
    lineage.add_argument("model", help="registered model name, e.g. demo_reviews-classifier")
    lineage.add_argument("--alias", default=CHAMPION)
    lineage.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    # the download bar of the logged snapshot manifest would interleave with the chain
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        lines = lineage_chain(connect(args.tracking_uri), args.model, args.alias)
    except TrackingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

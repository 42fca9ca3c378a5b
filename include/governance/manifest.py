"""The manifest of a dataset version, typed: what every reader may rely on, checked when a
version is written and when it is read back.

The sections every reader uses (counts, conservation, the gate's decision, the history read,
the files in and out, the state) are typed field by field and refuse unknown keys. The audit's,
the deduplication's and the contract's sections are recorded as the stages report them (their
shape follows the contract: a single-label dataset has no annotator figures), typed as mappings.
``manifest.schema.json`` beside this module is the JSON schema of the model;
``python -m governance.manifest`` prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance.contracts import DAY_PATTERN
from governance.errors import NonRetryableError
from governance.reasons import ReasonKind

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")
MANIFEST = "manifest.json"


class ManifestError(NonRetryableError):
    """A manifest is not what readers rely on: a bug in the writer, or a file edited by hand."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreatedBy(BaseModel):
    """Who wrote the version: the run id, and the Airflow task when a task did."""

    model_config = ConfigDict(extra="allow", frozen=True)

    run_id: str
    dag_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    map_index: int | None = None


class Conservation(_Section):
    """Every source row in exactly one bucket: ``accounted == rows_in`` is ``holds``."""

    rows_in: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    train: int = Field(ge=0)
    val: int = Field(ge=0)
    test: int = Field(ge=0)
    accounted: int = Field(ge=0)
    holds: bool


class ReasonCount(_Section):
    """Source rows quarantined by one rule of one stage."""

    stage: str
    kind: ReasonKind
    check: str
    column: str | None
    rows: int = Field(ge=0)


class QuarantineCounts(_Section):
    """Quarantined source rows; a row that broke several rules counts under each of them in
    ``by_reason``, ``by_kind`` and ``reasons`` (so those may add up to more than ``total``)."""

    total: int = Field(ge=0)
    by_stage: dict[str, int]
    by_reason: dict[str, int]  # by reason key: the check, with its column when it names one
    by_kind: dict[ReasonKind, int]
    reasons: list[ReasonCount]


class DuplicateCounts(_Section):
    exact: int = Field(ge=0)
    near: int = Field(ge=0)


class SplitCounts(_Section):
    rows: int = Field(ge=0)
    items: int = Field(ge=0)
    by_label: dict[str, int]


class Counts(_Section):
    rows_in: int = Field(ge=0)
    quarantined: QuarantineCounts
    duplicates: DuplicateCounts
    conflicts: int = Field(ge=0)
    splits: dict[str, SplitCounts]


class GateCheck(_Section):
    name: str
    description: str
    comparison: str
    threshold: float | int | None
    observed: float | int | None
    passed: bool | None  # None: the check does not apply to this version
    detail: str = ""
    shown: dict[str, str | None] = Field(default_factory=dict)


class GateDecision(_Section):
    status: Literal["passed", "failed"]
    message: str
    checks: list[GateCheck]
    failed: list[str]


class HistoryVersion(_Section):
    version: str = Field(pattern=DAY_PATTERN)
    status: str
    digest: str
    manifest_sha256: str | None = None


class HistoryRead(_Section):
    """The settled days before this one that the version was computed against."""

    origin: str = Field(pattern=DAY_PATTERN)
    digest: str
    versions: list[HistoryVersion]


class InputFile(_Section):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    records: int | None = Field(default=None, ge=0)


class OutputFile(_Section):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    rows: int | None = Field(default=None, ge=0)


class VersionManifest(_Section):
    """``manifest.json`` of a published, refused or dry-run version."""

    dataset: str
    version: str = Field(pattern=DAY_PATTERN)
    published: bool
    dry_run: bool
    created_by: CreatedBy
    contract: dict[str, Any]
    conservation: Conservation
    counts: Counts
    label_mapping: dict[str, Any]
    warnings: list[str]
    dedup: dict[str, Any]
    thresholds: dict[str, float]
    inputs: list[InputFile]
    audit: dict[str, Any]
    history: HistoryRead
    state: Literal["current", "stale"]
    stale_reason: str | None = None
    gate: GateDecision
    # Written with the files, so absent only from a manifest not yet published.
    outputs: dict[str, OutputFile] | None = None


def validated(manifest: dict[str, Any], where: str) -> VersionManifest:
    """The typed manifest; ``ManifestError`` naming every field that is wrong."""
    try:
        return VersionManifest.model_validate(manifest)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ManifestError(f"{where}: not a valid version manifest: {problems}") from exc


def read_version_manifest(version_dir: Path) -> VersionManifest:
    """A version's manifest, read and checked."""
    path = Path(version_dir) / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from exc
    return validated(raw, str(path))


def schema_text() -> str:
    return json.dumps(VersionManifest.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())

"""The manifest of a dataset version, typed: what every reader may rely on, checked when a
version is written and when it is read back.

Every section a reader uses (counts, conservation, the audit, the gate's decision, the history
read, the files in and out, the state) is typed field by field and refuses unknown keys; a figure
that does not apply to a version (agreement of a single-label dataset, drift of a first version)
is None. The deduplication's and the contract's sections are recorded as the stages and the
contract give them: the contract has its own model, the deduplication's figures are for people.
``manifest.schema.json`` beside this module is the JSON schema of the model;
``python -m governance.manifest`` prints it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance.contracts import DAY_PATTERN
from governance.errors import NonRetryableError
from governance.reasons import ReasonKind

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")
MANIFEST = "manifest.json"


_Model = TypeVar("_Model", bound=BaseModel)


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
    """An entry of the landing partition: read, refused whole (never opened when it leaves the
    landing folder), or skipped as no data (a sub-folder, a hidden file, another pattern)."""

    name: str
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # None: never opened
    bytes: int | None = Field(default=None, ge=0)
    records: int | None = Field(default=None, ge=0)
    status: Literal["read", "refused", "skipped"] = "read"
    refused: str | None = None  # why the file, or the rest of it, was not read
    skipped: str | None = None
    compression: str | None = None
    encoding: str | None = None
    encoding_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    encoding_method: str | None = None


class TextHygiene(_Section):
    """Values the contract's text hygiene cleaned (quarantined ones are counted by reason; a
    value cleaned twice counts under both)."""

    control_stripped: int = Field(ge=0)
    bidi_stripped: int = Field(ge=0)
    invisible_stripped: int = Field(ge=0)
    normalized: int = Field(ge=0)


class PrivacyFigures(_Section):
    """What the privacy scan found in the items' text, counted by entity and by the action the
    contract took (never a value); ``quarantine_previews`` counts what it masked in the ingest
    quarantine's previews of rejected records."""

    items: int = Field(ge=0)
    items_with_pii: int = Field(ge=0)
    pii_rate: float = Field(ge=0.0, le=1.0)
    entities: dict[str, int]
    actions: dict[str, int]
    quarantined_items: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    quarantine_previews: dict[str, int]
    policy: dict[str, str]


class OutputFile(_Section):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    rows: int | None = Field(default=None, ge=0)


class ClassAgreement(_Section):
    krippendorff_alpha: float | None
    fleiss_kappa: float | None


class AgreementFigures(_Section):
    """Agreement of the annotators' votes (None where a figure cannot be computed)."""

    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    fleiss_items: int = Field(ge=0)
    annotators: int = Field(ge=0)
    votes: int = Field(ge=0)
    per_class: dict[str, ClassAgreement]


class CandidateFigures(_Section):
    """One aggregator ``auto`` weighed: its mean held-out log-likelihood a vote, and its gain
    over plurality with the standard error of that gain."""

    name: str
    log_likelihood: float
    gain: float
    standard_error: float


class ConsensusFigures(_Section):
    """Which aggregator decided the consensus and why; ``candidates`` is empty unless ``auto``
    chose. ``changed_from_plurality`` counts items whose consensus is not their plurality."""

    items: int = Field(ge=0)
    requested: str
    aggregator: str
    reason: str
    candidates: list[CandidateFigures]
    folds: int = Field(ge=0)
    scored_votes: int = Field(ge=0)
    fitted_votes: int = Field(ge=0)
    earlier_votes: int = Field(ge=0)
    no_majority_items: int = Field(ge=0)
    changed_from_plurality: int = Field(ge=0)
    disagrees_with_label: int = Field(ge=0)
    mean_confidence: float | None


class AnnotatorFigures(_Section):
    count: int = Field(ge=0)
    flagged: list[str]
    min_accuracy: float
    min_items: int = Field(ge=0)
    interval_confidence: float
    not_enough_data: int = Field(ge=0)


class LabelErrorFigures(_Section):
    method: str
    model: str
    folds: int = Field(ge=0)
    items: int = Field(ge=0)
    unlabelled_items: int = Field(ge=0)
    suspected: int = Field(ge=0)
    rate: float | None
    out_of_fold_accuracy: float | None


class ClassBalance(_Section):
    """Class shares now and in the previous version; the test figures are None without one."""

    current: dict[str, float]
    previous: dict[str, float] | None
    max_share_change: float | None
    chi2: float | None
    p_value: float | None


class TextLengthDrift(_Section):
    bins: list[float]
    current_hist: list[int]
    previous_hist: list[int] | None
    current_median: float | None
    previous_median: float | None
    ks_statistic: float | None
    p_value: float | None


class DriftFigures(_Section):
    """Against the previous version; its figures are None for a first version."""

    previous_version: str | None
    class_balance: ClassBalance
    text_length: TextLengthDrift
    new_vocabulary_share: float | None


class AuditFigures(_Section):
    """The audit's section. Agreement, consensus and annotators are None for a single-label
    dataset, label errors where they could not be scored; ``skipped`` says why."""

    items: int = Field(ge=0)
    classes: list[str]
    multi_annotator: bool
    skipped: list[str]
    consensus: ConsensusFigures | None
    agreement: AgreementFigures | None
    annotators: AnnotatorFigures | None
    label_errors: LabelErrorFigures | None
    drift: DriftFigures


class VersionFacts(_Section):
    """What a night measured: everything of a manifest but the gate's decision on it, the
    state its history left it in and the files written."""

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
    thresholds: dict[str, float | int]
    inputs: list[InputFile]
    hygiene: TextHygiene | None = None  # None: written before text hygiene was counted
    privacy: PrivacyFigures | None = None  # None: written before the privacy scan existed
    audit: AuditFigures
    history: HistoryRead


class VersionManifest(VersionFacts):
    """``manifest.json`` of a published, refused or dry-run version."""

    state: Literal["current", "stale"]
    stale_reason: str | None = None
    gate: GateDecision
    # Written with the files, so absent only from a manifest not yet published.
    outputs: dict[str, OutputFile] | None = None

    def written(self) -> dict[str, Any]:
        """What ``manifest.json`` holds: the fields given, as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


def validated(manifest: Mapping[str, Any], where: str) -> VersionManifest:
    """The typed manifest; ``ManifestError`` naming every field that is wrong."""
    return _checked(VersionManifest, manifest, where)


def validated_facts(facts: Mapping[str, Any], where: str) -> VersionFacts:
    """A night's figures, typed, before the gate decides on them."""
    return _checked(VersionFacts, facts, where)


def _checked(model: type[_Model], data: Mapping[str, Any], where: str) -> _Model:
    try:
        return model.model_validate(data)
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

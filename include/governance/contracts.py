"""Dataset contracts: one YAML file per dataset, validated into typed settings.

A contract is the only thing a platform engineer writes to register a dataset, so an invalid one
must be refused with a message naming the file and the offending key. This module imports no
pandas: the DAG factory loads contracts while the dag-processor parses DAG files.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from governance.contract_base import Strict as _Strict
from governance.contract_finetune import FinetuneSpec
from governance.errors import InvalidInputError, NonRetryableError

CONTRACTS_DIR_ENV = "GOVERNANCE_CONTRACTS_DIR"
DATA_ROOT_ENV = "GOVERNANCE_DATA_ROOT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# The consensus aggregators (governance.audit.aggregators); ``auto`` lets each night's votes choose.
AggregatorName = Literal["plurality", "dawid_skene", "one_coin", "glad", "mmsr", "wawa"]
ConsensusChoice = Literal["auto", AggregatorName]
# source.encoding that decides each file's encoding from its bytes (governance.encodings).
AUTO_ENCODING = "auto"
# A day: a partition of the landing zone, a dataset version, a contract's start.
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class ContractError(NonRetryableError, ValueError):
    """A contract file that cannot be used, with the file and key that made it so."""


def _ascii_compatible_codec(name: str) -> str:
    """A known encoding in which lines split on b"\\n" before decoding (what readers need)."""
    try:
        codecs.lookup(name)
    except LookupError as exc:
        raise InvalidInputError(f"unknown encoding {name!r}") from exc
    if "\n,\t".encode(name) != b"\n,\t":
        raise InvalidInputError(f"encoding {name!r} is not ASCII-compatible")
    return name


class SourceSpec(_Strict):
    """How the day's landing files are read."""

    format: Literal["csv", "tsv", "jsonl", "parquet"]
    pattern: str = "*"
    # ``auto``: each file's encoding is detected, among ``allowed_encodings`` (valid UTF-8 is
    # UTF-8), and a file not placed with ``min_encoding_confidence`` is quarantined whole; a
    # codec name reads every file with it, undecodable lines quarantined one by one.
    encoding: str = AUTO_ENCODING
    allowed_encodings: list[str] = Field(
        default_factory=lambda: ["utf-8", "cp1252", "latin-1"], min_length=1
    )
    min_encoding_confidence: float = Field(default=0.8, gt=0.0, le=1.0)
    # Compressions read transparently (from files named *.gz or *.zst); none by default.
    compression: list[Literal["gzip", "zstd"]] = Field(default_factory=list)
    max_decompressed_bytes: int = Field(default=20 * 2**30, gt=0)
    separator: str | None = None
    header: bool = True
    columns: list[str] | None = None
    quoting: Literal["minimal", "none"] = "minimal"
    max_line_bytes: int = Field(default=1_000_000, gt=0)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return value if value == AUTO_ENCODING else _ascii_compatible_codec(value)

    @field_validator("allowed_encodings")
    @classmethod
    def _known_encodings(cls, values: list[str]) -> list[str]:
        return [_ascii_compatible_codec(value) for value in values]

    @property
    def delimiter(self) -> str:
        if self.separator is not None:
            return self.separator
        return "\t" if self.format == "tsv" else ","

    @model_validator(mode="after")
    def _columns_when_headerless(self) -> SourceSpec:
        if self.format in ("csv", "tsv") and not self.header and not self.columns:
            raise InvalidInputError("columns: required when header is false")
        if self.separator is not None and len(self.separator) != 1:
            raise InvalidInputError("separator: must be a single character")
        return self


class LabelSpec(_Strict):
    """The label vocabulary and how dirty spellings map onto it."""

    column: str | None = None
    classes: list[str] = Field(min_length=2)
    case_insensitive: bool = True
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aliases_point_to_classes(self) -> LabelSpec:
        unknown = sorted({v for v in self.aliases.values() if v not in self.classes})
        if unknown:
            raise InvalidInputError(f"aliases: map to unknown classes {unknown}")
        if len(set(self.classes)) != len(self.classes):
            raise InvalidInputError("classes: must be unique")
        return self


class AnnotatorSpec(_Strict):
    """Several raters per item: one column per rater (wide) or one row per vote (long)."""

    layout: Literal["wide", "long"]
    columns: list[str] | None = None
    annotator_column: str | None = None
    label_column: str | None = None

    @model_validator(mode="after")
    def _layout_fields(self) -> AnnotatorSpec:
        if self.layout == "wide" and not self.columns:
            raise InvalidInputError("columns: required for the wide layout")
        if self.layout == "long" and not (self.annotator_column and self.label_column):
            raise InvalidInputError(
                "annotator_column and label_column: required for the long layout"
            )
        return self


class ColumnCheck(_Strict):
    """Row checks on one column; each failing row is quarantined with the check's name."""

    column: str
    required: bool = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    allowed: list[str] | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidInputError(f"not a valid regular expression: {exc}") from exc
        return value


class TextSpec(_Strict):
    """The text column, its length bounds (counted on the stripped text, so whitespace alone is
    empty) and its hygiene (governance.hygiene): what happens to characters a reader cannot see."""

    column: str
    min_length: int = Field(default=1, ge=0)
    max_length: int = Field(default=10_000, ge=1)
    # C0/C1 control characters (NUL...; tab and line breaks are text) in any column.
    control_characters: Literal["quarantine", "strip"] = "quarantine"
    # Bidirectional embeddings, overrides and isolates (Trojan-source) in any column.
    bidi_controls: Literal["quarantine", "strip"] = "quarantine"
    # Zero-width space, word joiner, invisible operators, BOM inside the text (the zero-width
    # joiners that emoji and Persian need stay).
    invisible_characters: Literal["keep", "strip"] = "strip"
    normalization: Literal["NFC", "NFKC", "none"] = "NFC"


PiiAction = Literal["off", "report", "mask", "quarantine"]
BUILT_IN_ENTITIES = ("email", "phone", "credit_card", "iban", "ip_address", "secret")


class NationalIdSpec(_Strict):
    """A national identifier to look for: where it is (a pattern) and, ideally, the
    python-stdnum module whose check digits confirm it (``us.ssn``, ``nl.bsn``, ``fr.nir``...)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    pattern: str
    validator: str | None = None
    action: PiiAction = "mask"

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidInputError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("validator")
    @classmethod
    def _validator_exists(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            found = importlib.util.find_spec(f"stdnum.{value}")
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise InvalidInputError(f"python-stdnum has no module {value!r}")
        return value


class PrivacySpec(_Strict):
    """Personal data and secrets in the text (governance.privacy): per entity, ``report``
    (counted only), ``mask`` (replaced by ``<ENTITY>`` in what dedup, split, training and every
    published table see), ``quarantine`` (the item is quarantined, its preview masked) or
    ``off``. The default reports everything and changes nothing."""

    email: PiiAction = "report"
    phone: PiiAction = "report"
    credit_card: PiiAction = "report"
    iban: PiiAction = "report"
    ip_address: PiiAction = "report"
    secret: PiiAction = "report"
    national_ids: list[NationalIdSpec] = Field(default_factory=list)
    # Regions whose national phone formats are read (a number written +CC is read anyway).
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE", "FR", "IN"])
    # A token that no known key format names is a secret from this many characters on, when
    # random enough: bits per character of its own characters (a random base62 token of 32
    # characters has 4.2 or more 99 times in 100; English words squashed together have less).
    min_secret_length: int = Field(default=32, ge=12)
    min_secret_entropy: float = Field(default=4.2, gt=0.0, le=8.0)

    @model_validator(mode="after")
    def _distinct_names(self) -> PrivacySpec:
        names = [ident.name for ident in self.national_ids]
        clash = sorted({n for n in names if names.count(n) > 1 or n in BUILT_IN_ENTITIES})
        if clash:
            raise InvalidInputError(f"national_ids: names {clash} repeat or shadow a built-in")
        return self

    def policy(self) -> dict[str, str]:
        """Every entity looked for and its action."""
        names = [*BUILT_IN_ENTITIES, *(ident.name for ident in self.national_ids)]
        return {name: action for name in names if (action := self.action(name))}

    def action(self, entity: str) -> str | None:
        """What happens to ``entity``; None when it is not looked for."""
        if entity in BUILT_IN_ENTITIES:
            chosen = str(getattr(self, entity))
        else:
            chosen = next((i.action for i in self.national_ids if i.name == entity), "off")
        return None if chosen == "off" else chosen


class IdSpec(_Strict):
    """An id column, or none: then the id is derived from the content and its provenance."""

    column: str | None = None


class DedupSpec(_Strict):
    near_threshold: float = Field(
        default=0.8, gt=0.0, le=1.0, title="Near-duplicate Jaccard threshold"
    )
    ngram: int = Field(default=1, ge=1, le=5)
    num_perm: int = Field(default=128, ge=16, le=512)
    near_action: Literal["drop", "keep"] = "drop"
    conflict_action: Literal["quarantine", "majority"] = "quarantine"


class SplitSpec(_Strict):
    train: float = Field(default=0.8, gt=0.0, lt=1.0)
    val: float = Field(default=0.1, ge=0.0, lt=1.0)
    test: float = Field(default=0.1, gt=0.0, lt=1.0)
    salt: str = ""

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-9:
            raise InvalidInputError(f"train + val + test must be 1, got {total:g}")
        return self

    @property
    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


class LandingSpec(_Strict):
    """When the day's partition counts as arrived and how long to wait for it."""

    ready_marker: str | None = None
    poke_interval_minutes: float = Field(default=5.0, gt=0)
    timeout_hours: float = Field(default=6.0, gt=0)
    # When no partition arrived in time: fail the run (the day stays unsettled, and later days
    # wait for a decision), or settle the day as skipped, recorded with the reason.
    on_missing: Literal["fail", "skip"] = "fail"
    # When the partition's files hold no data row (empty, or a header alone): fail the run with
    # EmptyPartitionError, or settle the day as skipped (nothing published, no Asset event).
    on_empty: Literal["fail", "skip"] = "fail"


class HistorySpec(_Strict):
    """How a day waits for the days before it to settle (days settle in order from start_date)."""

    poke_interval_seconds: float = Field(default=60.0, gt=0)
    timeout_hours: float = Field(default=24.0, gt=0)


class GateSpec(_Strict):
    """Thresholds a version must meet to be published; any one failing stops the fine-tune."""

    max_quarantine_rate: float = Field(default=0.2, ge=0.0, le=1.0, title="Max quarantine rate")
    max_duplicate_rate: float = Field(default=0.5, ge=0.0, le=1.0, title="Max duplicate rate")
    min_alpha: float = Field(default=0.4, ge=-1.0, le=1.0, title="Min Krippendorff's alpha")
    max_suspected_error_rate: float = Field(
        default=0.1, ge=0.0, le=1.0, title="Max suspected label error rate"
    )
    min_rows_per_class_per_split: int = Field(
        default=1, ge=0, title="Min items per class per split"
    )
    max_class_drift: float = Field(
        default=0.2, ge=0.0, le=1.0, title="Max change of a class share vs the previous version"
    )
    max_pii_rate: float = Field(
        default=1.0, ge=0.0, le=1.0, title="Max share of items holding personal data or secrets"
    )


class AuditSpec(_Strict):
    """How labels are audited: the consensus, the out-of-fold baseline and when an annotator is
    unreliable."""

    folds: int = Field(default=5, ge=2, le=20)
    seed: int = 0
    # How several votes become one label: an aggregator, or ``auto`` (plurality unless a model's
    # labels predict held-out votes better by more than one standard error).
    consensus: ConsensusChoice = "auto"
    # Earlier published versions whose votes join the consensus fit (never later ones, so a
    # rerun of an old day fits on the same votes): more votes per worker, steadier reliability.
    consensus_window: int = Field(default=0, ge=0, le=60)
    # Confidence of the Wilson interval around each annotator's accuracy.
    interval_confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_annotator_accuracy: float = Field(default=0.7, ge=0.0, le=1.0)
    min_annotator_items: int = Field(default=20, ge=1)
    min_pair_overlap: int = Field(default=10, ge=1)
    # Annotators drawn one by one in the report (confusion matrix, pairwise kappa): the flagged,
    # then the least accurate. Everyone is in the quality table; a crowd of thousands would
    # otherwise cost minutes of drawing and an unreadable report.
    detail_annotators: int = Field(default=12, ge=0, le=200)


class Contract(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str = "data-platform"
    tags: list[str] = Field(default_factory=list)
    schedule: str = "@daily"
    # The dataset's first day: the DAG starts there, and every day from it settles in order.
    start_date: str = Field(default="2026-01-01", pattern=DAY_PATTERN)
    # Runs of the governance DAG at once: they overlap in the stages that read no history.
    max_active_runs: int = Field(default=4, ge=1)
    source: SourceSpec
    id: IdSpec = Field(default_factory=IdSpec)
    text: TextSpec
    labels: LabelSpec
    annotators: AnnotatorSpec | None = None
    checks: list[ColumnCheck] = Field(default_factory=list)
    privacy: PrivacySpec = Field(default_factory=PrivacySpec)
    dedup: DedupSpec = Field(default_factory=DedupSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    landing: LandingSpec = Field(default_factory=LandingSpec)
    history: HistorySpec = Field(default_factory=HistorySpec)
    audit: AuditSpec = Field(default_factory=AuditSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    finetune: FinetuneSpec = Field(default_factory=FinetuneSpec)

    @model_validator(mode="after")
    def _label_source(self) -> Contract:
        if self.labels.column is None and self.annotators is None:
            raise InvalidInputError("labels.column: required unless annotators are declared")
        if self.annotators and self.annotators.layout == "long" and self.id.column is None:
            raise InvalidInputError("id.column: required for the long annotator layout")
        return self

    @property
    def source_columns(self) -> list[str]:
        """Columns the contract reads from every record."""
        names: list[str | None] = [self.text.column]
        if self.id.column:
            names.append(self.id.column)
        if self.labels.column:
            names.append(self.labels.column)
        if self.annotators:
            if self.annotators.layout == "wide":
                names.extend(self.annotators.columns or [])
            else:
                names.extend([self.annotators.annotator_column, self.annotators.label_column])
        names.extend(check.column for check in self.checks)
        return list(dict.fromkeys(n for n in names if n))

    @property
    def dag_id(self) -> str:
        return f"govern_{self.name}"

    @property
    def finetune_dag_id(self) -> str:
        return f"finetune_{self.name}"

    @property
    def reconcile_dag_id(self) -> str:
        return f"reconcile_{self.name}"


def contracts_dir() -> Path:
    return Path(os.environ.get(CONTRACTS_DIR_ENV, PROJECT_ROOT / "include" / "contracts"))


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV, PROJECT_ROOT / "data"))


def _key_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def load_contract(path: str | Path) -> Contract:
    """Parse and validate one contract file; raise ContractError naming the file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: must be a mapping of keys, got {type(raw).__name__}")
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{_key_path(err['loc'])}': {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ContractError(f"{path}: {problems}") from None
    if contract.name != path.stem:
        raise ContractError(f"{path}: key 'name': '{contract.name}' must match the file name")
    return contract


def load_contracts(directory: str | Path | None = None) -> list[Contract]:
    """Every contract in the directory, sorted by name."""
    directory = Path(directory) if directory is not None else contracts_dir()
    return [load_contract(p) for p in sorted(directory.glob("*.yaml"))]

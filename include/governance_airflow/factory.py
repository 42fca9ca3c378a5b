"""Builds the nightly governance DAG of one dataset contract.

Only wiring lives here: every task hands its context to ``governance_airflow.runtime``, which
imports the core lazily. Parsing this module costs airflow.sdk, pydantic and yaml, nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from governance.contracts import Contract, data_root
from governance.layout import DatasetLayout
from governance.manifest import validated
from governance.stages import STAGES, Stage
from governance_airflow.deadlines import deadline_for
from governance_airflow.failures import record_failure
from governance_airflow.params import governance_params
from governance_airflow.retries import GOVERNANCE_RETRY_POLICY
from governance_airflow.runtime import run_stage
from governance_airflow.sensors import HistorySettledSensor, LandingPartitionSensor

log = logging.getLogger(__name__)

# The first retry's delay; the backoff doubles it each try, with jitter, up to the cap.
DEFAULT_RETRY_DELAY = dt.timedelta(seconds=20)


def task_defaults(owner: str) -> dict[str, Any]:
    """Retries with exponential backoff, a cap on the delay and a timeout on every task (the
    cluster policy refuses a task without them); the retry policy fails at once what a retry
    cannot fix and retries transient errors."""
    return {
        "owner": owner,
        "retries": 2,
        "retry_delay": DEFAULT_RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=1),
        "retry_policy": GOVERNANCE_RETRY_POLICY,
        "on_failure_callback": record_failure,
    }


def contract_dag_arguments(
    contract: Contract, kind: Literal["governance", "finetune"]
) -> dict[str, Any]:
    """What every DAG of a contract shares: its start, no catch-up (a backfill is explicit),
    the task defaults, the deadline alert of its kind and its tags."""
    return {
        "start_date": dt.datetime.fromisoformat(contract.start_date).replace(tzinfo=dt.UTC),
        "catchup": False,
        "default_args": task_defaults(contract.owner),
        "deadline": deadline_for(contract, kind),
        "tags": [kind, contract.name, *contract.tags],
    }


def curated_asset(contract: Contract) -> Asset:
    """The published versions of a dataset; fine-tune DAGs are scheduled on it.

    Its identity does not depend on where the data root is; each event says where the version is.
    """
    return Asset(
        name=f"curated_{contract.name}",
        uri=f"x-governance://curated/{contract.name}",
        group="governance",
    )


def build_governance_dag(contract: Contract, stages: tuple[Stage, ...] = STAGES) -> DAG:
    """The nightly DAG: the landing sensor, then one task per stage of ``stages`` in order, the
    history sensor before the first stage that needs every earlier day settled."""
    asset = curated_asset(contract)
    with DAG(
        dag_id=contract.dag_id,
        description=contract.description or f"Nightly governance of {contract.name}",
        schedule=CronDataIntervalTimetable(contract.schedule, timezone="UTC"),
        max_active_runs=contract.max_active_runs,
        params=governance_params(contract),
        doc_md=__doc__,
        **contract_dag_arguments(contract, "governance"),
    ) as dag:
        previous: Any = LandingPartitionSensor(task_id="wait_for_partition", contract=contract)
        waited = False
        for stage in stages:
            if stage.needs_settled_history and not waited:
                settled = HistorySettledSensor(task_id="wait_for_history", contract=contract)
                previous = previous >> settled
                waited = True
            previous = previous >> stage_task(stage, contract, stages, asset)
    return dag


def stage_task(stage: Stage, contract: Contract, stages: tuple[Stage, ...], asset: Asset) -> Any:
    """The task that runs one stage; the publishing stage also emits the dataset's Asset event."""
    if stage.publishes:

        @task(task_id=stage.task_id, doc_md=stage.doc, outlets=[asset], multiple_outputs=False)
        def publish() -> dict[str, Any]:
            context = get_current_context()
            manifest = run_stage(stage, contract, context, stages)
            return publication(contract, manifest, context, asset)

        return publish()

    # One XCom per task: the summary whole, not one more per key.
    @task(task_id=stage.task_id, doc_md=stage.doc, multiple_outputs=False)
    def run() -> dict[str, Any]:
        return run_stage(stage, contract, get_current_context(), stages)

    return run()


def publication(
    contract: Contract, manifest: dict[str, Any], context: Any, asset: Asset
) -> dict[str, Any]:
    """What the publish task returns and tells the Asset event; a dry run ends skipped."""
    marked_stale = list(manifest["marked_stale"])  # the publication's news, not the manifest's
    written = validated({k: v for k, v in manifest.items() if k != "marked_stale"}, "publish")
    summary = {
        "version": written.version,
        "counts": written.counts.model_dump(),
        "gate": written.gate.status,
        "state": written.state,
        "marked_stale": marked_stale,
    }
    if marked_stale:
        log.warning(
            "%s %s changed the history of later days, now stale until recomputed in "
            "order (DAG %s): %s",
            contract.name,
            written.version,
            contract.reconcile_dag_id,
            ", ".join(marked_stale),
        )
    if written.dry_run:
        context["ti"].xcom_push(key="dry_run_summary", value=summary)
        raise AirflowSkipException("dry run: computed everything, published nothing")
    context["outlet_events"][asset].extra = {
        "version": written.version,
        "path": str(DatasetLayout(data_root(), contract.name).version(written.version)),
        "rows_in": written.conservation.rows_in,
    }
    return summary


def without_deadlines(dag: DAG) -> DAG:
    """The DAG for an in-process ``dag.test()`` run (``make run``, the tests).

    Airflow 3.3.2's ``dag.test()`` looks a finished run's deadlines up as stored alert ids, which
    only a DAG serialized by the dag-processor has, and fails on the in-memory definitions; the
    scheduler path is unaffected. A local run has no deadline to miss anyway.
    """
    dag.deadline = None
    return dag

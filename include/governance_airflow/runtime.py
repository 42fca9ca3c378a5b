"""The thin adapter between Airflow's task context and the governance core.

Tasks call in here; the heavy core (pandas, pandera...) is imported only when a task runs, never
while the dag-processor parses DAG files.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from governance.contracts import Contract
from governance.errors import DaySkipped
from governance.stages import STAGES, Stage
from governance_airflow.params import overridden
from governance_airflow.retries import failing_fast

if TYPE_CHECKING:
    from governance.pipeline import DayRun


def worker_hostname() -> str:
    """The host name a task instance records (Airflow's ``hostname_callable``): the worker's
    ``GOVERNANCE_HOSTNAME`` where several workers share one machine, else its own name."""
    return os.environ.get("GOVERNANCE_HOSTNAME") or socket.getfqdn()


def resolve_day(context: Any) -> str:
    """The partition a run processes: the ``day`` Param, else the run's logical date.

    A scheduled run's logical date is the start of its data interval (the day that just ended);
    a manual run triggered for a logical date processes that date; one without a logical date
    falls back to its data interval start.
    """
    params = context.get("params") or {}
    if params.get("day"):
        return str(params["day"])
    moment = context.get("logical_date") or context.get("data_interval_start")
    if moment is None:
        moment = context["dag_run"].run_after
    return moment.date().isoformat() if isinstance(moment, dt.datetime) else str(moment)[:10]


def day_run(contract: Contract, context: Any, stages: tuple[Stage, ...] = STAGES) -> DayRun:
    from governance.pipeline import DayRun

    params = context.get("params") or {}
    ti = context["ti"]
    return DayRun(
        contract=overridden(contract, params),
        day=resolve_day(context),
        run_id=context["run_id"],
        dry_run=bool(params.get("dry_run", False)),
        stages=stages,
        lineage={
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "try_number": ti.try_number,
            "map_index": getattr(ti, "map_index", -1),
        },
    )


def run_stage(
    stage: Stage, contract: Contract, context: Any, stages: tuple[Stage, ...] = STAGES
) -> dict[str, Any]:
    """Run one stage of ``stages`` (the DAG's table); errors that a retry cannot fix fail the
    task at once."""
    run = day_run(contract, context, stages)
    with failing_fast(f"{contract.name} {run.day} {stage.name}"):
        try:
            return stage(run)
        except DaySkipped as skipped:
            # The tasks after it skip too, so nothing is published and no Asset event is sent.
            raise AirflowSkipException(str(skipped)) from skipped

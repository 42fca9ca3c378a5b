"""Records a task that failed for good, for the watchdog to report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from governance.contracts import data_root


def _day(context: Any) -> str | None:
    from governance_airflow.runtime import resolve_day

    try:
        return resolve_day(context)
    except (KeyError, AttributeError, TypeError):
        return None


def record_failure(context: Any) -> None:
    """on_failure_callback of every governance task: Airflow calls it once a task has failed
    for good (out of retries, or failed at once), and the watchdog reads what it records."""
    from governance.watchdog import FinalFailure, record_final_failure

    ti = context["ti"]
    task = context.get("task")
    retries = getattr(task, "retries", 0) or 0
    record_final_failure(
        data_root(),
        FinalFailure(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=context["run_id"],
            try_number=int(ti.try_number),
            max_tries=int(retries) + 1,
            failed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            error=str(context.get("exception") or "")[:300],
            day=_day(context),
        ),
    )

"""One of several concurrent backfill processes: runs its share of days through Airflow in order.

Started by the concurrency test with its own ``AIRFLOW_HOME`` (a copy of a migrated metadata
database) and the data root shared with the other processes, as Celery workers share it.
Appends one ``day state waits`` line per day to ``--results``: waits counts the reschedules of
the history sensor (how often the day found an earlier day unsettled).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from tests.integration.helpers import quick_contract


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("start")
    parser.add_argument("days", nargs="+")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--wait-minutes", type=float, default=15.0)
    args = parser.parse_args()

    from governance_airflow.factory import build_governance_dag, without_deadlines

    contract = quick_contract(args.dataset, args.start)
    history = contract.history.model_copy(update={"timeout_hours": args.wait_minutes / 60})
    dag = without_deadlines(build_governance_dag(contract.model_copy(update={"history": history})))
    for day in args.days:
        logical = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        dag_run = dag.test(logical_date=logical)
        with args.results.open("a") as results:
            results.write(f"{day} {dag_run.state} {history_waits(dag_run)}\n")


def history_waits(dag_run) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(TaskReschedule)
            .filter(
                TaskReschedule.ti_id.in_(
                    [
                        ti.id
                        for ti in dag_run.get_task_instances(session=session)
                        if ti.task_id == "wait_for_history"
                    ]
                )
            )
            .count()
        )


if __name__ == "__main__":
    main()

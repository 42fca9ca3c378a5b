"""``make run``'s reads and writes of Airflow's metadata database: pause flags, the backfill,
the runs it started with their task states, a task's XCom, and the clean-up of an interrupted
run. Airflow is imported inside each function, once the embedded home is configured."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from governance_airflow.demo_progress import RunSnapshot, run_seconds


def serialized(dag_ids: Iterable[str]) -> bool:
    """Whether the dag-processor has stored every one of these DAGs (backfills need it)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = set(dag_ids)
    with create_session() as session:
        found = session.scalars(
            select(SerializedDagModel.dag_id).where(SerializedDagModel.dag_id.in_(wanted))
        )
        return wanted <= set(found)


def set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def last_run_id() -> int:
    """The newest DagRun row before the demo starts: runs created later are the demo's."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.max(DagRun.id))) or 0


def create_backfill(dag_id: str, days: Sequence[str], max_active_runs: int) -> int:
    """A backfill over the days, what ``airflow backfill create`` makes; a day that already ran
    (an earlier ``make run``) is run again."""
    from airflow.models.backfill import ReprocessBehavior, _create_backfill

    def midnight(day: str) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)

    def create() -> Any:
        return _create_backfill(
            dag_id=dag_id,
            from_date=midnight(days[0]),
            to_date=midnight(days[-1]),
            max_active_runs=max_active_runs,
            reverse=False,
            dag_run_conf=None,
            triggering_user_name="make run",
            reprocess_behavior=ReprocessBehavior.COMPLETED,
        )

    return retried_while_locked(create).id


def retried_while_locked(write: Callable[[], Any], attempts: int = 5) -> Any:
    """``write()``, again after a pause while SQLite answers "database is locked".

    SQLite refuses at once, without waiting for its timeout, a transaction that read and then
    wants to write while another connection holds the write lock (waiting could deadlock). The
    failed transaction was rolled back whole, so running it again is safe.
    """
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            return write()
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def close_interrupted(dag_ids: Sequence[str], backfill_dag_id: str) -> list[str]:
    """Fail the runs an interrupted ``make run`` left unfinished (their processes were stopped
    with it) and complete its backfill, so that the next backfill can run those nights again.
    Returns the runs it failed."""
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import or_, select

    unfinished = (DagRunState.QUEUED, DagRunState.RUNNING)
    failed = []
    with create_session() as session:
        backfills = session.scalars(
            select(Backfill).where(
                Backfill.dag_id == backfill_dag_id, Backfill.completed_at.is_(None)
            )
        ).all()
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id.in_(dag_ids),
                DagRun.state.in_(unfinished),
                or_(
                    DagRun.backfill_id.in_([b.id for b in backfills]),
                    DagRun.run_type == "asset_triggered",
                ),
            )
        ).all()
        for run in runs:
            dag = SerializedDagModel.get_dag(run.dag_id, session=session)
            if dag is None:
                continue
            set_dag_run_state_to_failed(dag=dag, run_id=run.run_id, commit=True, session=session)
            failed.append(f"{run.dag_id} {run.run_id}")
        for backfill in backfills:
            backfill.completed_at = dt.datetime.now(dt.UTC)
    return failed


def snapshot_runs(backfill_id: int, after_id: int, dag_ids: Sequence[str]) -> list[RunSnapshot]:
    """The backfill's runs and every run of these DAGs created since the demo started."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun)
            .where(
                DagRun.dag_id.in_(dag_ids),
                or_(DagRun.backfill_id == backfill_id, DagRun.id > after_id),
            )
            .order_by(DagRun.logical_date.is_(None), DagRun.logical_date, DagRun.id)
        ).all()
        found = []
        for run in runs:
            tasks = session.execute(
                select(TaskInstance.task_id, TaskInstance.state)
                .where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
                .order_by(TaskInstance.task_id, TaskInstance.map_index)
            ).all()
            found.append(
                RunSnapshot(
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    run_type=state_name(run.run_type),
                    state=state_name(run.state),
                    day=run.logical_date.date().isoformat() if run.logical_date else None,
                    tasks=tuple((task, state_name(state)) for task, state in tasks),
                    seconds=run_seconds(run.start_date, run.end_date),
                )
            )
        return found


def state_name(state: Any) -> str:
    """An Airflow state enum, a plain string or None (a task instance not yet scheduled)."""
    return "none" if state is None else str(getattr(state, "value", state))


def xcom_value(dag_id: str, run_id: str, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)

"""`make run`: generate the demo feed, start an embedded Airflow (api-server, scheduler,
dag-processor on the project's SQLite home), backfill the governance DAG over the demo days and let
the last night's curated Asset event start the fine-tune DAG; print each run's progress, then
what each stage caught against the defects the generator injected and the fine-tune's outcome.

    python -m governance_airflow.demo --start 2026-11-01 --days 4 --items-per-day 400
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.contracts import Contract, contracts_dir, data_root, load_contract

DEMO_DATASET = "demo_reviews"
POLL_SECONDS = 1.0
INDENT = " " * 9  # under a progress line's text
# After the last night succeeded, how long its Asset event may take to start the fine-tune.
FINETUNE_START_TIMEOUT = 120.0
# Task states by what they say about a run, most telling first.
ACTIVITY = (
    ("running", "running"),
    ("up_for_retry", "retrying"),
    ("up_for_reschedule", "waiting"),
    ("deferred", "waiting"),
    ("queued", "queued"),
    ("scheduled", "queued"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=None,
        help="first day of the feed: the contract's start_date (its default), where days settle",
    )
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--items-per-day", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-finetune", action="store_true", help="governance only")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("DEMO_AIRFLOW_PORT", "8089")),
        help="the embedded api-server's port on 127.0.0.1",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for all runs")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- progress (pure)


@dataclass(frozen=True)
class RunSnapshot:
    """One DAG run as the metadata database has it at one poll."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    day: str | None = None  # the logical date's day; an Asset-triggered run has none
    tasks: tuple[tuple[str, str], ...] = ()  # (task_id, state) per task instance
    seconds: float | None = None  # start to end, once it has ended

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.dag_id, self.day, self.run_type) if part)


def counted(names: Iterable[str]) -> str:
    """``train, train, register`` -> ``train x2, register`` (mapped tasks count once each)."""
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in Counter(names).items())


def activity(tasks: Sequence[tuple[str, str]]) -> str | None:
    """What a running run is doing: its running tasks, else what it waits or retries on; None
    between two tasks (the scheduler has not queued the next one yet)."""
    for state, word in ACTIVITY:
        names = [task for task, task_state in tasks if task_state == state]
        if names:
            return f"{word} {counted(names)}"
    return None


def describe(run: RunSnapshot) -> str | None:
    if run.state == "success":
        return "success" if run.seconds is None else f"success in {run.seconds:.0f} s"
    if run.state == "failed":
        for state in ("failed", "upstream_failed"):
            failed = [task for task, task_state in run.tasks if task_state == state]
            if failed:
                return f"FAILED at {counted(failed)}"
        return "FAILED"
    if run.state == "queued":
        return "queued"
    return activity(run.tasks)


@dataclass
class ProgressPrinter:
    """One line each time a run's description changes, stamped with seconds since the start."""

    started: float = field(default_factory=time.monotonic)
    seen: dict[str, str] = field(default_factory=dict)

    def lines(self, runs: Iterable[RunSnapshot], now: float | None = None) -> list[str]:
        elapsed = (time.monotonic() if now is None else now) - self.started
        found = []
        for run in runs:
            text = describe(run)
            key = f"{run.dag_id}/{run.run_id}"
            if text is not None and self.seen.get(key) != text:
                self.seen[key] = text
                found.append(f"[{elapsed:4.0f} s] {run.label}: {text}")
        return found


def nights_done(nights: Iterable[RunSnapshot]) -> set[str]:
    return {run.day for run in nights if run.state == "success" and run.day}


def finetune_may_start(days: Sequence[str], done: set[str]) -> bool:
    """Every night but the last has published: the next publication is the last night's, whose
    Asset event is the one that should start the fine-tune."""
    return all(day in done for day in days[:-1])


def run_seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


# ---------------------------------------------------------------- the metadata database


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

    backfill = _create_backfill(
        dag_id=dag_id,
        from_date=midnight(days[0]),
        to_date=midnight(days[-1]),
        max_active_runs=max_active_runs,
        reverse=False,
        dag_run_conf=None,
        triggering_user_name="make run",
        reprocess_behavior=ReprocessBehavior.COMPLETED,
    )
    return backfill.id


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


def mlflow_store() -> str:
    """The store the fine-tune tasks wrote to: the connection ``mlflow_default``, resolved as
    the tasks resolve it (a relative sqlite path is the project's)."""
    from airflow.models.connection import Connection

    from governance import tracking
    from governance_airflow.finetune_runtime import MLFLOW_CONNECTION

    try:
        connection = Connection.get_connection_from_secrets(MLFLOW_CONNECTION)
        explicit = connection.extra_dejson.get("tracking_uri") or connection.get_uri()
    except Exception:  # no connection: the tasks fell back the same way
        explicit = None
    return tracking.tracking_uri(explicit)


# ---------------------------------------------------------------- the demo


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does, so the components are stopped."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Watch:
    """What the demo waits for: every night's backfill run, then one Asset-triggered fine-tune."""

    contract: Contract
    days: list[str]
    backfill_id: int
    after_id: int
    finetune: bool
    # Called once, with the nights' runs, when every night has succeeded.
    on_nights: Callable[[list[RunSnapshot]], None] = lambda nights: None
    printer: ProgressPrinter = field(default_factory=ProgressPrinter)
    finetune_unpaused: bool = False
    scheduled_explained: bool = False
    nights_ended: float | None = None

    @property
    def dag_ids(self) -> list[str]:
        return [self.contract.dag_id, self.contract.finetune_dag_id]

    def poll(self) -> list[RunSnapshot] | None:
        """One look at the runs; the final snapshot once everything awaited has succeeded."""
        runs = snapshot_runs(self.backfill_id, self.after_id, self.dag_ids)
        for line in self.printer.lines(runs):
            print(line, flush=True)
        if not self.scheduled_explained and any(r.run_type == "scheduled" for r in runs):
            self.scheduled_explained = True
            print(f"{INDENT}(unpausing also scheduled the newest night; no demo feed lands for it)")
        nights = [r for r in runs if r.dag_id == self.contract.dag_id and r.run_type == "backfill"]
        tunes = [r for r in runs if r.dag_id == self.contract.finetune_dag_id]
        for run in (*nights, *tunes):
            if run.state == "failed":
                logs = Path(os.environ.get("AIRFLOW_HOME", ".airflow")) / "logs"
                raise RuntimeError(
                    f"{run.label} {describe(run)}; task logs: "
                    f"{logs}/dag_id={run.dag_id}/run_id={run.run_id}/"
                )
        done = nights_done(nights)
        if self.finetune and not self.finetune_unpaused and finetune_may_start(self.days, done):
            set_paused(self.contract.finetune_dag_id, False)
            self.finetune_unpaused = True
            print(
                f"{INDENT}{self.contract.finetune_dag_id} unpaused: the publication of "
                f"{self.days[-1]} will start it",
                flush=True,
            )
        if not set(self.days) <= done:
            return None
        if self.nights_ended is None:
            self.nights_ended = time.monotonic()
            self.on_nights(nights)
        if not self.finetune:
            return runs
        if any(run.state == "success" for run in tunes):
            return runs
        if not tunes and time.monotonic() - self.nights_ended > FINETUNE_START_TIMEOUT:
            raise RuntimeError(
                f"no {self.contract.finetune_dag_id} run started within "
                f"{FINETUNE_START_TIMEOUT:.0f} s of the curated Asset event of {self.days[-1]}"
            )
        return None


def start_nights(contract: Contract, days: list[str]) -> tuple[int, int]:
    """Backfill the nights, the fine-tune paused; returns the backfill's id and the newest run
    id from before it (the runs the demo then watches are newer or the backfill's)."""
    ids = [contract.dag_id, contract.finetune_dag_id]
    # Only the last night's publication may start the fine-tune: paused until then.
    set_paused(contract.finetune_dag_id, True)
    for run in close_interrupted(ids, contract.dag_id):
        print(f"failed {run}, left unfinished by an interrupted make run", flush=True)
    after_id = last_run_id()
    # One night at a time: each night finds the nights before it settled at its first look, so no
    # sensor reschedules every few seconds (Airflow 3.3 can fail a reschedule-mode sensor whose
    # next poke is queued before its previous poke's end is processed: apache/airflow#71172),
    # and two cores gain little from overlapping nights.
    backfill_id = create_backfill(contract.dag_id, days, max_active_runs=1)
    # A backfill's runs start once the DAG is unpaused (which also schedules the newest night).
    set_paused(contract.dag_id, False)
    print(
        f"backfill {backfill_id} of {contract.dag_id}: {days[0]} .. {days[-1]}, one night at "
        "a time",
        flush=True,
    )
    return backfill_id, after_id


def wait_for(watch: Watch, airflow: Any, timeout: float) -> list[RunSnapshot]:
    deadline = time.monotonic() + timeout
    while (runs := watch.poll()) is None:
        airflow.check_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs not done in {timeout:.0f} s; see {airflow.logs()}")
        time.sleep(POLL_SECONDS)
    return runs


def run_airflow(
    contract: Contract,
    days: list[str],
    args: argparse.Namespace,
    on_nights: Callable[[list[RunSnapshot]], None],
) -> list[RunSnapshot]:
    """Start the components, backfill the nights, wait for the runs; stop everything after."""
    from governance_airflow.embedded import EmbeddedAirflow, EmbeddedSettings

    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    settings = EmbeddedSettings(home=home, port=args.port)
    started = time.monotonic()
    with stop_on_signals(), EmbeddedAirflow(settings) as airflow:
        print(
            f"Airflow api-server, scheduler and dag-processor on {settings.url} "
            f"(logs {airflow.logs()}, task logs {settings.home / 'logs'})",
            flush=True,
        )
        airflow.wait_api()
        airflow.wait_until(lambda: serialized([contract.dag_id, contract.finetune_dag_id]), "DAGs")
        print(f"Airflow ready in {time.monotonic() - started:.0f} s", flush=True)
        backfill_id, after_id = start_nights(contract, days)
        watch = Watch(
            contract, days, backfill_id, after_id, not args.skip_finetune, on_nights=on_nights
        )
        try:
            runs = wait_for(watch, airflow, args.timeout)
        except BaseException:
            # The components stop with the demo: what they were running cannot finish.
            with contextlib.suppress(Exception):
                close_interrupted(watch.dag_ids, contract.dag_id)
            raise
        finally:
            # No further night starts once the demo ends; unpause the DAG in the UI to go on.
            with contextlib.suppress(Exception):
                set_paused(contract.dag_id, True)
    print(f"{contract.dag_id} paused again: unpause it in the UI (make ui) to let nights go on")
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from governance.demo_feed import generate_feed
    from governance_airflow.embedded import database_env

    # Before Airflow is first imported here: this process writes to SQLite as well.
    os.environ.update(database_env(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")))

    root = data_root()
    contract = load_contract(contracts_dir() / f"{DEMO_DATASET}.yaml")
    # The scheduler runs the contract as written, and days settle in order from its start_date.
    start = args.start or dt.date.fromisoformat(contract.start_date)
    if start.isoformat() != contract.start_date:
        print(
            f"--start {start} differs from the start_date {contract.start_date} of "
            f"{DEMO_DATASET}: days settle in order from the contract's start_date",
            file=sys.stderr,
        )
        return 2
    truths = generate_feed(
        root / "landing",
        root / "truth",
        start,
        args.days,
        items_per_day=args.items_per_day,
        seed=args.seed,
        dataset=DEMO_DATASET,
    )
    print(f"Generated {args.days} days of '{DEMO_DATASET}' under {root / 'landing'}", flush=True)
    days = [truth.day for truth in truths]

    def report_nights(nights: list[RunSnapshot]) -> None:
        """The nights' summaries, printed while the fine-tune runs."""
        by_day = {night.day: night for night in nights}
        print("\n" + "=" * 78)
        print("\n\n".join(day_report(truth, by_day[truth.day], root) for truth in truths))
        print("=" * 78, flush=True)

    try:
        runs = run_airflow(contract, days, args, report_nights)
    except (RuntimeError, TimeoutError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make run: interrupted; the Airflow components are stopped", file=sys.stderr)
        return 130
    if args.skip_finetune:
        return 0
    tune = next(r for r in reversed(runs) if r.dag_id == contract.finetune_dag_id)
    outcome = xcom_value(tune.dag_id, tune.run_id, "register")
    print(format_finetune(outcome, tune.seconds or 0.0, mlflow_store(), tune))
    return 0


def day_report(truth: Any, night: RunSnapshot, root: Path) -> str:
    from governance.evaluation import evaluate_version, format_scores
    from governance.publish import read_manifest
    from governance.summary import format_day_summary

    version_dir = root / "curated" / DEMO_DATASET / truth.day
    manifest = read_manifest(version_dir)
    return (
        f"{format_day_summary(manifest, version_dir)}\n"
        f"  airflow run    {night.run_id} ({night.seconds or 0:.0f} s)\n"
        f"  detection against the injected defects:\n"
        f"{format_scores(evaluate_version(truth, version_dir))}"
    )


def format_finetune(
    outcome: dict, elapsed: float, store: str, run: RunSnapshot | None = None
) -> str:
    metrics = outcome["metrics"]
    name = outcome["model_name"]
    lines = [
        f"{DEMO_DATASET} fine-tune on version {outcome['version']} ({elapsed:.0f} s)",
        f"  MLflow store   {store}",
        f"  MLflow run     {outcome['run_id']}",
        f"  test           macro-F1 {metrics['test_macro_f1']:.3f}, accuracy "
        f"{metrics['test_accuracy']:.3f}, ECE {metrics['test_expected_calibration_error']:.3f}",
        f"  model          {name} version {outcome['registered']}",
        f"  promotion      {'promoted' if outcome['promoted'] else 'not promoted'}: "
        f"{outcome['reason']}",
        f"  alias          champion -> version {outcome['champion']}",
        f"  lineage        make lineage MODEL={name}",
    ]
    if run is not None:
        lines.insert(1, f"  airflow run    {run.run_id} ({run.run_type})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

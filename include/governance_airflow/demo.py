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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.contracts import Contract, contracts_dir, data_root, load_contract
from governance.layout import DatasetLayout, landing_root
from governance_airflow.demo_metadata import (
    close_interrupted,
    create_backfill,
    last_run_id,
    serialized,
    set_paused,
    snapshot_runs,
    xcom_value,
)
from governance_airflow.demo_progress import (
    ProgressPrinter,
    RunSnapshot,
    describe,
    finetune_may_start,
    nights_done,
)

DEMO_DATASET = "demo_reviews"
POLL_SECONDS = 1.0
INDENT = " " * 9  # under a progress line's text
# After the last night succeeded, how long its Asset event may take to start the fine-tune.
FINETUNE_START_TIMEOUT = 120.0


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
    from governance.demo.feed import generate_feed
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
        landing_root(root),
        root / "truth",
        start,
        args.days,
        items_per_day=args.items_per_day,
        seed=args.seed,
        dataset=DEMO_DATASET,
    )
    print(f"Generated {args.days} days of '{DEMO_DATASET}' under {landing_root(root)}", flush=True)
    days = [truth.day for truth in truths]

    def report_nights(nights: list[RunSnapshot]) -> None:
        """The nights' summaries, printed while the fine-tune runs."""
        by_day = {night.day: night for night in nights}
        print("\n" + "=" * 78)
        print("\n\n".join(day_report(truth, by_day[truth.day], root) for truth in truths))
        print(consensus_report(truths, root))
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
    from governance.demo.evaluation import evaluate_version, format_scores
    from governance.manifest import read_version_manifest
    from governance.summary import format_day_summary

    version_dir = DatasetLayout(root, DEMO_DATASET).version(truth.day)
    manifest = read_version_manifest(version_dir)
    return (
        f"{format_day_summary(manifest, version_dir)}\n"
        f"  airflow run    {night.run_id} ({night.seconds or 0:.0f} s)\n"
        f"  detection against the injected defects:\n"
        f"{format_scores(evaluate_version(truth, version_dir))}"
    )


def consensus_report(truths: list[Any], root: Path) -> str:
    """The nights' consensus against the true labels, and where its calibration page went."""
    from governance.demo.consensus_check import PAGE, check_consensus, check_page
    from governance.publish import write_text_atomic

    curated = DatasetLayout(root, DEMO_DATASET).version(truths[0].day).parent
    check = check_consensus(truths, curated)
    target = root / "truth" / DEMO_DATASET / PAGE
    write_text_atomic(target, check_page(check, f"{DEMO_DATASET}: consensus against the truth"))
    return (
        f"\nconsensus against the true labels ({check.items} items, "
        f"aggregators {', '.join(check.aggregators)}):\n"
        f"  accuracy {check.accuracy:.4f} (plurality {check.plurality_accuracy:.4f}); "
        f"{check.changed} items changed from plurality, {check.changed_right} of them rightly\n"
        f"  expected calibration error {check.calibration_error:.4f}; reliability diagram {target}"
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
    if "search" in outcome:
        lines[3:3] = format_search(outcome)
    if outcome.get("ensemble"):
        lines.insert(len(lines) - 4, format_ensemble(outcome["ensemble"]))
    if run is not None:
        lines.insert(1, f"  airflow run    {run.run_id} ({run.run_type})")
    return "\n".join(lines)


def format_ensemble(competition: dict) -> str:
    """The ensemble's members, its score against the best trial and which of the two won."""
    trials = ", ".join(str(member["index"]) for member in competition["members"])
    winner = "the ensemble" if competition["chosen"] else "the best trial alone"
    return f"  ensemble       trials {trials}: {competition['reason']}; {winner} is registered"


def format_search(outcome: dict) -> list[str]:
    """The Bayesian study in two lines: its trials, and the settings the best one was given."""
    study, best = outcome["search"], outcome["best_trial"]
    config = best["config"]
    return [
        f"  search         bayesian, {study['trials']} trials ({study['complete']} complete, "
        f"{study['pruned']} pruned); plots in the run's search/ artifacts",
        f"  best trial     {best['index']}: learning rate {config['learning_rate']:.2e}, batch "
        f"{config['batch_size']}, {config['epochs']} epoch(s), weight decay "
        f"{config['weight_decay']:.3f}, warm-up {config['warmup_ratio']:.2f}; val macro-F1 "
        f"{outcome['metrics']['best_val_macro_f1']:.3f}",
    ]


if __name__ == "__main__":
    sys.exit(main())

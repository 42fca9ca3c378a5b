"""`make run`'s own logic: progress lines, when the fine-tune may start, what the demo waits for,
and how the embedded Airflow components are configured and stopped."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from governance.contracts import contracts_dir, load_contract
from governance_airflow import demo, demo_metadata, demo_progress, embedded
from governance_airflow.demo import Watch
from governance_airflow.demo_progress import ProgressPrinter, RunSnapshot

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def night(day: str, state: str = "running", *tasks: tuple[str, str], seconds=None) -> RunSnapshot:
    return RunSnapshot(
        dag_id="govern_demo_reviews",
        run_id=f"backfill__{day}",
        run_type="backfill",
        state=state,
        day=day,
        tasks=tasks,
        seconds=seconds,
    )


def tune(state: str) -> RunSnapshot:
    return RunSnapshot("finetune_demo_reviews", "asset_triggered__x", "asset_triggered", state)


# ---------------------------------------------------------------- progress


def test_counted_names_mapped_tasks_once_with_their_number() -> None:
    assert demo_progress.counted(["train", "train", "register"]) == "train x2, register"
    assert demo_progress.counted([]) == ""


def test_a_run_is_described_by_its_most_telling_tasks() -> None:
    assert demo_progress.describe(night("d", "queued")) == "queued"
    running = night("d", "running", ("ingest_validate", "success"), ("deduplicate", "running"))
    assert demo_progress.describe(running) == "running deduplicate"
    waiting = night("d", "running", ("wait_for_history", "up_for_reschedule"))
    assert demo_progress.describe(waiting) == "waiting wait_for_history"
    assert (
        demo_progress.describe(night("d", "running", ("split", "up_for_retry"))) == "retrying split"
    )
    assert demo_progress.describe(night("d", "success", seconds=21.4)) == "success in 21 s"
    failed = night("d", "failed", ("gate", "failed"), ("publish", "upstream_failed"))
    assert demo_progress.describe(failed) == "FAILED at gate"
    assert demo_progress.describe(night("d", "failed", ("publish", "upstream_failed"))) == (
        "FAILED at publish"
    )


def test_between_two_tasks_a_run_has_nothing_new_to_say() -> None:
    assert (
        demo_progress.describe(night("d", "running", ("split", "success"), ("audit", "none")))
        is None
    )


def test_the_printer_writes_a_line_only_when_a_run_changes() -> None:
    printer = ProgressPrinter(started=100.0)
    first = night("2026-11-01", "running", ("ingest_validate", "running"))
    assert printer.lines([first], now=104.0) == [
        "[   4 s] govern_demo_reviews 2026-11-01 backfill: running ingest_validate"
    ]
    assert printer.lines([first], now=106.0) == []
    between = night("2026-11-01", "running", ("ingest_validate", "success"))
    assert printer.lines([between], now=108.0) == []
    done = night("2026-11-01", "success", seconds=30.0)
    assert printer.lines([done, tune("queued")], now=130.0) == [
        "[  30 s] govern_demo_reviews 2026-11-01 backfill: success in 30 s",
        "[  30 s] finetune_demo_reviews asset_triggered: queued",
    ]


def test_run_seconds_needs_both_ends() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert demo_progress.run_seconds(start, start + dt.timedelta(seconds=12)) == 12.0
    assert demo_progress.run_seconds(start, None) is None
    assert demo_progress.run_seconds(start + dt.timedelta(seconds=1), start) is None


def test_state_names() -> None:
    from airflow.utils.state import DagRunState

    assert demo_metadata.state_name(DagRunState.SUCCESS) == "success"
    assert demo_metadata.state_name("running") == "running"
    assert demo_metadata.state_name(None) == "none"


# ---------------------------------------------------------------- the fine-tune trigger


def test_the_fine_tune_may_start_once_every_night_but_the_last_has_published() -> None:
    assert not demo_progress.finetune_may_start(DAYS, {"2026-11-01"})
    assert demo_progress.finetune_may_start(DAYS, {"2026-11-01", "2026-11-02"})
    assert demo_progress.finetune_may_start(DAYS[:1], set())  # one night: its event is the last one


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> tuple[Watch, list, list]:
    """A Watch over scripted snapshots; records what it pauses and unpauses."""
    polls: list[list[RunSnapshot]] = []
    paused: list[tuple[str, bool]] = []
    monkeypatch.setattr(demo, "snapshot_runs", lambda *args: polls.pop(0))
    monkeypatch.setattr(demo, "set_paused", lambda dag_id, flag: paused.append((dag_id, flag)))
    contract = load_contract(contracts_dir() / "demo_reviews.yaml")
    watch = Watch(contract, DAYS, backfill_id=1, after_id=0, finetune=True)
    return watch, polls, paused


def test_the_watch_unpauses_the_fine_tune_before_the_last_night_and_ends_with_it(
    watched, capsys
) -> None:
    watch, polls, paused = watched
    reported: list[list[RunSnapshot]] = []
    watch.on_nights = reported.append
    first = night(DAYS[0], "success", seconds=20)
    second = night(DAYS[1], "success", seconds=20)
    polls += [
        [first, night(DAYS[1], "running", ("split", "running")), night(DAYS[2], "queued")],
        [first, second, night(DAYS[2], "running", ("ingest_validate", "running"))],
        [first, second, night(DAYS[2], "success", seconds=20), tune("running")],
        [first, second, night(DAYS[2], "success", seconds=20), tune("success")],
    ]
    assert watch.poll() is None
    assert paused == []
    assert watch.poll() is None
    assert paused == [("finetune_demo_reviews", False)]
    assert watch.poll() is None
    assert [[run.day for run in nights] for nights in reported] == [DAYS]
    final = watch.poll()
    assert final is not None and final[-1].state == "success"
    assert paused == [("finetune_demo_reviews", False)]  # once
    assert len(reported) == 1
    assert "will start it" in capsys.readouterr().out


def test_the_watch_stops_at_a_failed_night(watched) -> None:
    watch, polls, _ = watched
    polls.append([night(DAYS[0], "failed", ("gate", "failed"))])
    with pytest.raises(RuntimeError, match="FAILED at gate"):
        watch.poll()


def test_a_scheduled_night_is_shown_but_not_waited_for(watched, capsys) -> None:
    watch, polls, _ = watched
    watch.finetune = False
    scheduled = RunSnapshot(
        "govern_demo_reviews",
        "scheduled__2026-12-04",
        "scheduled",
        "running",
        "2026-12-03",
        (("wait_for_partition", "up_for_reschedule"),),
    )
    polls.append([night(day, "success", seconds=9) for day in DAYS] + [scheduled])
    assert watch.poll() is not None
    out = capsys.readouterr().out
    assert "2026-12-03 scheduled: waiting wait_for_partition" in out
    assert "no demo feed lands for it" in out


def test_signals_end_the_demo_like_ctrl_c() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), demo.stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_format_finetune_names_the_run_and_the_store() -> None:
    outcome = {
        "version": "2026-11-04",
        "run_id": "abc",
        "model_name": "demo_reviews-classifier",
        "registered": "1",
        "promoted": True,
        "reason": "no champion yet",
        "champion": "1",
        "metrics": {
            "test_macro_f1": 0.96,
            "test_accuracy": 0.965,
            "test_expected_calibration_error": 0.024,
        },
    }
    text = demo.format_finetune(outcome, 31.2, "sqlite:////p/mlflow.db", tune("success"))
    assert text.splitlines()[0] == "demo_reviews fine-tune on version 2026-11-04 (31 s)"
    assert "  airflow run    asset_triggered__x (asset_triggered)" in text
    assert "  MLflow store   sqlite:////p/mlflow.db" in text
    assert "champion -> version 1" in text
    assert "search" not in text, "a grid run shows no study"

    searched = {
        **outcome,
        "metrics": {**outcome["metrics"], "best_val_macro_f1": 0.8123},
        "search": {"trials": 4, "complete": 3, "pruned": 1},
        "best_trial": {
            "index": 2,
            "config": {
                "learning_rate": 2.1e-4,
                "batch_size": 16,
                "epochs": 2,
                "weight_decay": 0.05,
                "warmup_ratio": 0.1,
            },
        },
    }
    searched["ensemble"] = {
        "members": [{"index": 2}, {"index": 0}],
        "chosen": False,
        "reason": "test macro-F1 0.9500 vs the best single trial's 0.9610: not better by more "
        "than the margin 0.005",
    }
    lines = demo.format_finetune(searched, 31.2, "sqlite:////p/mlflow.db").splitlines()
    assert lines[6] == (
        "  ensemble       trials 2, 0: test macro-F1 0.9500 vs the best single trial's 0.9610: "
        "not better by more than the margin 0.005; the best trial alone is registered"
    )
    assert lines[5].startswith("  test ") and lines[7].startswith("  model ")
    assert lines[3:5] == [
        "  search         bayesian, 4 trials (3 complete, 1 pruned); plots in the run's search/ "
        "artifacts",
        "  best trial     2: learning rate 2.10e-04, batch 16, 2 epoch(s), weight decay 0.050, "
        "warm-up 0.10; val macro-F1 0.812",
    ]


# ---------------------------------------------------------------- embedded components


def test_component_env_ties_the_components_together(tmp_path: Path) -> None:
    settings = embedded.EmbeddedSettings(home=tmp_path, port=18089)
    env = embedded.component_env(
        settings, {"PATH": "/usr/bin", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////x.db"}
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18089/execution/"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "18089"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["PATH"].startswith(str(settings.bin_dir))
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"].endswith(".SQLITE_CONNECT_ARGS")


def test_the_sqlite_lock_wait_is_set_for_sqlite_only() -> None:
    found = embedded.database_env("sqlite:////x.db")
    assert sorted(found) == [
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
    ]
    for path in found.values():
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)["timeout"] > 5
    assert embedded.database_env("postgresql+psycopg2://u@h/db") == {}


def test_leftovers_are_stopped_only_when_they_still_run_airflow(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / embedded.PIDS_FILE).write_text(f'{{"scheduler": {bystander.pid}}}')
        embedded.EmbeddedAirflow(embedded.EmbeddedSettings(home=tmp_path)).stop_leftovers()
        assert bystander.poll() is None
        assert not (tmp_path / embedded.PIDS_FILE).exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_corrupt_pids_file_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / embedded.PIDS_FILE
    path.write_text("[1, 2")
    assert embedded.read_pids(path) == {}
    assert embedded.read_pids(tmp_path / "missing.json") == {}


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        airflow = embedded.EmbeddedAirflow(embedded.EmbeddedSettings(home=tmp_path, port=port))
        with pytest.raises(RuntimeError, match=f"port {port}"), airflow:
            pass
        assert airflow.processes == {}


def test_an_exited_component_is_reported_with_its_log(tmp_path: Path) -> None:
    airflow = embedded.EmbeddedAirflow(embedded.EmbeddedSettings(home=tmp_path))
    exited = subprocess.Popen(["true"])
    exited.wait()
    airflow.processes["scheduler"] = exited
    with pytest.raises(RuntimeError, match=r"run-scheduler\.log"):
        airflow.check_running()


def test_a_write_refused_while_another_holds_sqlites_lock_runs_again(tmp_path: Path) -> None:
    import sqlite3
    import threading

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    path = tmp_path / "metadata.db"
    holder = sqlite3.connect(path, check_same_thread=False)
    holder.execute("CREATE TABLE runs (id INTEGER)")
    holder.commit()
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO runs VALUES (1)")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    tries = []

    def write() -> int:
        tries.append(len(tries))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO runs VALUES (2)"))
        return len(tries)

    releases = threading.Timer(0.2, holder.commit)
    releases.start()
    assert demo_metadata.retried_while_locked(write) == 2
    releases.join()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM runs ORDER BY id")).scalars().all() == [1, 2]

    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"):
        demo_metadata.retried_while_locked(write, attempts=2)
    holder.rollback()

    def broken() -> None:
        tries.append(-1)
        with engine.begin() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))

    before = len(tries)
    with pytest.raises(OperationalError, match="no such table"):
        demo_metadata.retried_while_locked(broken)
    assert len(tries) == before + 1, "another error is not retried"

"""`make run`'s demo end to end on a private embedded Airflow: the nights are a backfill run by the
scheduler, the last publication's Asset event starts the fine-tune, and what the UI then shows
(run types, durations, pools) is what a real week leaves behind."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from governance_airflow.embedded import PIDS_FILE
from tests.conftest import PROJECT_ROOT, embedded_airflow_env
from tests.contracts import shipped_contract

pytestmark = pytest.mark.airflow

DAYS = ["2026-11-01", "2026-11-02"]
GOVERN = "govern_demo_reviews"
FINETUNE = "finetune_demo_reviews"
CONTRACT = shipped_contract("demo_reviews")
# dag.test() stamped a run with its logical date as start: a month-long "duration" in the UI.
LONGEST_TRUE_RUN = dt.timedelta(minutes=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_env(base: Path) -> dict[str, str]:
    """The Makefile's environment with every store under ``base``."""
    home = base / "airflow"
    store = f"sqlite:///{base / 'mlflow' / 'mlflow.db'}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "MLFLOW_", "GOVERNANCE_"))
    }
    env.update(embedded_airflow_env(home))
    env.update(
        {
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # The environment's connection wins over the one airflow_settings.yaml stores.
            "AIRFLOW_CONN_MLFLOW_DEFAULT": f'{{"conn_type": "generic", "extra": '
            f'{{"tracking_uri": "{store}"}}}}',
            "MLFLOW_TRACKING_URI": store,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_LOGGING_LEVEL": "ERROR",
            "GOVERNANCE_DATA_ROOT": str(base / "data"),
            "GOVERNANCE_MLFLOW_ARTIFACTS": str(base / "mlflow" / "artifacts"),
            "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}{os.pathsep}{PROJECT_ROOT / 'dags'}",
        }
    )
    return env


def run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("make_run")
    env = private_env(base)
    (base / "airflow").mkdir()
    for argv in (
        [sys.executable, "-m", "airflow", "db", "migrate"],
        [sys.executable, "-m", "governance_airflow.settings", "airflow_settings.yaml"],
    ):
        done = run(argv, env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    argv = [sys.executable, "-m", "governance_airflow.demo", "--days", str(len(DAYS))]
    argv += ["--items-per-day", "150", "--port", str(free_port()), "--timeout", "900"]
    done = run(argv, env, timeout=1200)
    logs = "".join(path.read_text() for path in sorted((base / "airflow").glob("run-*.log")))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{logs[-5000:]}"
    return base, done.stdout


def rows(base: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(base / "airflow" / "airflow.db") as db:
        return db.execute(sql, args).fetchall()


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_the_nights_are_a_backfill_run_by_the_scheduler_with_true_durations(demo) -> None:
    base, output = demo
    nights = rows(
        base,
        "SELECT logical_date, run_type, state, start_date, end_date FROM dag_run "
        "WHERE dag_id = ? AND backfill_id IS NOT NULL ORDER BY logical_date",
        GOVERN,
    )
    assert [night[0][:10] for night in nights] == DAYS
    for logical, run_type, state, start, end in nights:
        assert (run_type, state) == ("backfill", "success"), logical
        took = stamp(end) - stamp(start)
        assert dt.timedelta(0) < took < LONGEST_TRUE_RUN, (logical, start, end)
        assert stamp(start) > stamp(logical) + dt.timedelta(days=1), "not run as it happens"
    for day in DAYS:
        assert re.search(rf"\] {GOVERN} {day} backfill: success in \d+ s", output), day
        assert (base / "data" / "curated" / "demo_reviews" / day / "manifest.json").is_file()


def test_the_last_publication_starts_the_finetune_through_its_asset(demo) -> None:
    base, output = demo
    (tune,) = rows(base, "SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ?", FINETUNE)
    assert tune[1:] == ("asset_triggered", "success")
    pools = rows(
        base,
        "SELECT DISTINCT pool FROM task_instance WHERE dag_id = ? AND task_id = 'train'",
        FINETUNE,
    )
    assert pools == [("gpu",)]
    assert f"{FINETUNE} asset_triggered: success" in output
    assert f"demo_reviews fine-tune on version {DAYS[-1]}" in output
    trials = CONTRACT.finetune.trials
    assert re.search(rf"search +bayesian, {trials} trials \(\d complete, \d pruned\)", output)
    assert re.search(r"best trial +\d: learning rate \d\.\d\de-0\d, batch \d+", output)
    assert re.search(
        r"ensemble +trials \d, \d: test macro-F1 [01]\.\d{4} vs the best single trial's "
        r"[01]\.\d{4}: (not )?better by more than the margin 0\.005; the (ensemble|best trial "
        r"alone) is registered",
        output,
    ), "no ensemble shown: the pruner spares the sampler's random start, so 2 trials finish"
    assert (base / "mlflow" / "mlflow.db").is_file()


def test_the_demo_stops_its_components_and_pauses_the_nights_again(demo) -> None:
    base, _ = demo
    assert not (base / "airflow" / PIDS_FILE).exists()
    ours = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(base) in _environ_home(pid)]
    assert ours == [], "a component outlived make run"
    assert rows(base, "SELECT is_paused FROM dag WHERE dag_id = ?", GOVERN) == [(1,)]


def _environ_home(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""

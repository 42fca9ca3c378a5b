"""A backfill with four concurrent runs gives the data of a one-day-at-a-time run.

Four processes, each with its own Airflow metadata database, run the governance DAG through
Airflow for their share of the days (round robin, so every process's later day overlaps the
others' earlier ones) against one shared data root, as Celery workers do. The reference is the
pipeline run one day at a time in this process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from governance.errors import GateFailedError
from governance.history import Ledger, verify
from governance.pipeline import DayRun, run_day
from tests.conftest import PROJECT_ROOT
from tests.feeds import demo_feed
from tests.integration.helpers import data_file_digests, quick_contract, version

pytestmark = pytest.mark.airflow

DATASET = "demo_reviews"
START = "2026-06-01"
DAYS = [f"2026-06-{d:02d}" for d in range(1, 15)]
PROCESSES = 4


def settle_sequentially(root: Path) -> dict[str, str]:
    """Each day run to the end before the next starts; returns each day's settled status."""
    contract = quick_contract(DATASET, START)
    for day in DAYS:
        with contextlib.suppress(GateFailedError):  # a refusal settles the day too
            run_day(DayRun(contract, day, root=root, run_id=f"sequential-{day}"))
    return statuses(root)


def statuses(root: Path) -> dict[str, str]:
    ledger = Ledger(root, DATASET, START)
    return {day: str(record.status) for day in DAYS if (record := ledger.get(day))}


def backfill_concurrently(root: Path, airflow_db: Path, homes: Path) -> list[str]:
    """Start the processes, wait for all; returns their ``day state waits`` lines."""
    workers = []
    for k in range(PROCESSES):
        home = homes / f"worker-{k}"
        home.mkdir(parents=True)
        shutil.copy(airflow_db, home / "airflow.db")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "GOVERNANCE_DATA_ROOT": str(root),
            "PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / p) for p in ("plugins", "dags", "")),
        }
        command = [sys.executable, "-m", "tests.integration.backfill_worker", DATASET, START]
        command += ["--results", str(home / "results.txt")]
        # Files, not pipes: a pipe nobody reads yet fills up and stalls the process writing it.
        with (home / "log.txt").open("w") as log:
            process = subprocess.Popen(
                [*command, *DAYS[k::PROCESSES]],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        workers.append((home, process))
    lines = []
    for home, process in workers:
        process.wait(timeout=3600)
        assert process.returncode == 0, (home / "log.txt").read_text()[-4000:]
        lines += (home / "results.txt").read_text().splitlines()
    return lines


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("feed")
    demo_feed(source, START, len(DAYS), items_per_day=250, seed=5)
    return source / "landing"


def test_four_concurrent_runs_give_the_sequential_data(
    landing: Path, airflow_db: Path, tmp_path: Path
) -> None:
    sequential = tmp_path / "sequential"
    shutil.copytree(landing, sequential / "landing")
    expected = settle_sequentially(sequential)
    assert set(expected.values()) == {"published"}, expected

    concurrent = tmp_path / "concurrent"
    shutil.copytree(landing, concurrent / "landing")
    lines = backfill_concurrently(concurrent, airflow_db, tmp_path / "homes")

    assert len(lines) == len(DAYS), lines
    assert statuses(concurrent) == expected, "the concurrent runs settled days differently"
    for day in DAYS:
        if expected[day] == "published":
            assert data_file_digests(version(concurrent, DATASET, day)) == data_file_digests(
                version(sequential, DATASET, day)
            ), day
    assert verify(Ledger(concurrent, DATASET, START), deep=True) == []
    waits = sum(int(line.split()[2]) for line in lines)
    assert waits > 0, "no day ever waited for an earlier one: the runs never overlapped"

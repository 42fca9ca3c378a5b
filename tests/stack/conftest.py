"""The stack tier: the production topology (``governance.stack``) started once per session on
ports and databases of its own, driven through the REST API like an operator would."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.contracts import contracts_dir
from governance.stack import ADMIN_USER, Stack, StackSettings, drop_databases
from tests.conftest import PROJECT_ROOT
from tests.feeds import demo_feed
from tests.stack.api import AirflowApi

SETTINGS = StackSettings(
    root=PROJECT_ROOT / ".stack-test",
    name="governance_stack_test",
    airflow_port=18080,
    mlflow_port=15000,
    statsd_port=19125,
    scheduler_health_port=18974,
    log_server_port=18793,
    redis_db=11,
)
ARTIFACTS = PROJECT_ROOT / "tests" / "stack" / "artifacts"
# The modules run in this order: days settle in order, and each module goes on from the days the
# one before it settled.
MODULE_ORDER = ("test_topology.py", "test_faults.py", "test_ui_browser.py")

DATASET = "demo_reviews"
GOVERN = f"govern_{DATASET}"
FINETUNE = f"finetune_{DATASET}"
START = "2026-11-01"
BACKFILL_DAYS = [f"2026-11-{d:02d}" for d in range(1, 15)]
NEXT_DAY = "2026-11-15"
FAULT_DAYS = ["2026-11-16", "2026-11-17"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=lambda item: rank(item) if item.path.parent == Path(__file__).parent else -1)


@dataclass
class RunningStack:
    stack: Stack
    api: AirflowApi

    @property
    def data_root(self) -> Path:
        return self.stack.settings.root / "data"

    @property
    def mlflow_url(self) -> str:
        return self.stack.settings.mlflow_url

    def study_trials(self, run_id: str) -> list[Any]:
        """The Optuna trials of a fine-tune run's Bayesian search, from the stack's database."""
        import optuna

        s = self.stack.settings
        storage = (
            f"postgresql+psycopg2://{s.postgres_user}@{s.postgres_host}:{s.postgres_port}/"
            f"{s.database('optuna')}"
        )
        study = optuna.load_study(study_name=f"{FINETUNE}/{run_id}", storage=storage)
        return study.get_trials()


def fast_contracts(folder: Path) -> Path:
    """The shipped contracts with the history sensor poking every 5 s (a backfill's days follow
    one another within seconds, not a minute) and a smaller fine-tune: every publication starts
    one while nights still run on the same two cores, and what the stack proves about a search
    (a shared study, a retried trial resumed) needs three one-epoch trials, not the demo's."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(contracts_dir().glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        raw.setdefault("history", {})["poke_interval_seconds"] = 5
        if raw.get("finetune", {}).get("search") == "bayesian":
            tune = raw["finetune"]
            tune.update(trials=3, max_train_rows=256, max_eval_rows=128)
            tune["search_space"] = {**tune["search_space"], "epochs": {"low": 1, "high": 1}}
        (folder / path.name).write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def forget(settings: StackSettings) -> None:
    """Nothing of an earlier test stack survives: processes, databases, broker queue, files."""
    import redis

    Stack(settings).down(progress=lambda _: None)
    drop_databases(settings)
    redis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db).flushdb()
    shutil.rmtree(settings.root, ignore_errors=True)


@pytest.fixture(scope="session")
def running_stack() -> Iterator[RunningStack]:
    forget(SETTINGS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_CONTRACTS_DIR", str(fast_contracts(SETTINGS.root / "contracts")))
        stack = Stack(SETTINGS)
        try:
            stack.up(timeout=300)
            password = stack.variables()["AIRFLOW_ADMIN_PASSWORD"]
            yield RunningStack(stack, AirflowApi(SETTINGS.airflow_url, ADMIN_USER, password))
        finally:
            stack.down()
            keep = ARTIFACTS / "stack-logs"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(SETTINGS.logs, keep, ignore=shutil.ignore_patterns("airflow"))


def utc(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_seconds(run: dict) -> float:
    """A finished DAG run's wall time, start to end, as the UI shows it."""
    return round((utc(run["end_date"]) - utc(run["start_date"])).total_seconds(), 1)


def span_seconds(runs: Sequence[dict]) -> float:
    """From the first run's start to the last run's end."""
    first = min(utc(run["start_date"]) for run in runs)
    last = max(utc(run["end_date"]) for run in runs)
    return round((last - first).total_seconds(), 1)


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, object]]:
    """What the stack tier measured (durations, recovery times), written for the README's
    figures to ``tests/stack/artifacts/figures.json``; measured, never asserted."""
    found: dict[str, object] = {}
    yield found
    if found:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "figures.json").write_text(json.dumps(found, indent=1, sort_keys=True))
        print("\nstack figures:", json.dumps(found, sort_keys=True))


@pytest.fixture(scope="session")
def backfilled(
    running_stack: RunningStack, figures: dict[str, object]
) -> tuple[RunningStack, list[dict]]:
    """The landing days of every stack test, and the 14-day backfill by the scheduler."""
    root = running_stack.data_root
    demo_feed(root, START, len(BACKFILL_DAYS) + 1, items_per_day=250, seed=5)
    # The fault days are larger, so that a worker can be killed while a stage is busy.
    demo_feed(root, FAULT_DAYS[0], len(FAULT_DAYS), items_per_day=1500, seed=8)
    api = running_stack.api
    api.unpause(GOVERN)
    api.backfill(GOVERN, BACKFILL_DAYS[0], BACKFILL_DAYS[-1], max_active_runs=4)
    runs = api.wait_for(
        f"{len(BACKFILL_DAYS)} backfill runs of {GOVERN}",
        lambda: api.finished_runs(
            GOVERN, lambda run: run["run_type"] == "backfill", len(BACKFILL_DAYS)
        ),
        timeout=30 * 60,
    )
    nights = sorted(run_seconds(run) for run in runs)
    figures["backfill"] = {
        "nights": len(runs),
        "max_active_runs": 4,
        "span_s": span_seconds(runs),
        "night_median_s": nights[len(nights) // 2],
        "night_max_s": nights[-1],
    }
    return running_stack, runs

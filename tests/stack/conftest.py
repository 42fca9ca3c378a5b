"""The stack tier: the production topology (``governance.stack``) started once per session on
ports and databases of its own, driven through the REST API like an operator would."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from governance.contracts import contracts_dir
from governance.stack import ADMIN_USER, Stack, StackSettings, drop_databases
from tests.conftest import PROJECT_ROOT
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


def fast_contracts(folder: Path) -> Path:
    """The shipped contracts with the history sensor poking every 5 s (a backfill's days follow
    one another within seconds, not a minute)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(contracts_dir().glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        raw.setdefault("history", {})["poke_interval_seconds"] = 5
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

"""The Airflow components ``make run`` needs, started from this virtual environment for as long as
the demo runs, on the project's SQLite home (``.airflow/``) with the LocalExecutor.

- ``api-server``: the Execution API that the LocalExecutor's task processes report to (and the
  UI, on 127.0.0.1 only, while the demo runs);
- ``scheduler``: creates the runs, queues the tasks and runs them through the LocalExecutor;
- ``dag-processor``: parses ``dags/`` into the serialized DAGs the scheduler and backfills need.

No triggerer: the sensors reschedule rather than defer, and the DAGs' deadline alerts allow hours,
which a demo never reaches. Each component runs in its own process group, so stopping it stops
the task processes it started too; its output goes to ``<home>/run-<component>.log``.

The scheduler starts through ``python -m governance_airflow.embedded scheduler``, which imports
the libraries the tasks use (pandas, scikit-learn, torch, MLflow...) before it runs Airflow's
``scheduler`` command: the LocalExecutor's workers are forks of the scheduler, and so are the task
processes they start, so each task starts with them imported instead of spending 2-7 s of a
2-core machine importing them again (a Celery worker preloads its tasks' modules the same way).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from governance.processes import http_ok, port_free, stop_group

COMPONENTS = ("api-server", "scheduler", "dag-processor")
PIDS_FILE = "run-pids.json"
# What the tasks import, loaded once into the scheduler (see the module's docstring). Importing
# only: nothing here starts a thread pool that a fork could not carry (torch's starts on first use).
PRELOAD = (
    "governance_airflow.runtime",
    "governance_airflow.finetune_runtime",
    "governance.pipeline",
    "governance.finetune",
    "governance.finetune.training",
    "transformers.models.bert.modeling_bert",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
)
# SQLite has one writer at a time. Three components and the demo write to it, so each waits up to
# a minute for the lock rather than failing with "database is locked" after Python's default 5 s
# (``[database] sql_alchemy_connect_args`` names these by import path).
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 60}


def database_env(conn: str) -> dict[str, str]:
    """The settings that make every process of the demo wait for SQLite's write lock."""
    if not conn.startswith("sqlite"):
        return {}
    option = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"
    return {f"{option}{kind}": f"{__name__}.SQLITE_CONNECT_ARGS{kind}" for kind in ("", "_ASYNC")}


@dataclass(frozen=True)
class EmbeddedSettings:
    """Where the components live and what they bind; the port is loopback-only."""

    home: Path
    port: int = 8089
    log_server_port: int = 8798
    parallelism: int = 2
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> Path:
        return self.home / f"run-{name}.log"


def component_env(settings: EmbeddedSettings, base: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment (AIRFLOW_HOME, database, folders come from the Makefile) plus
    what ties the components together: the Execution API's address, loopback binding, a small
    executor for two cores, and INFO logs so that the UI shows each task's log in full."""
    env = dict(base)
    env.update(database_env(base.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite")))
    env.update(
        {
            "AIRFLOW_HOME": str(settings.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.url}/execution/",
            "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.port),
            "AIRFLOW__API__BASE_URL": settings.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.log_server_port),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # A task's supervisor notices its exit only at its next heartbeat tick (default 5 s),
            # which would add up to 5 s to every task of a run whose tasks take seconds.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            # The contracts do not change while the demo runs: parse dags/ once, not every 30 s.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "PATH": f"{settings.bin_dir}{os.pathsep}{base.get('PATH', '')}",
        }
    )
    return env


def component_argv(settings: EmbeddedSettings, name: str) -> list[str]:
    if name == "scheduler":
        return [sys.executable, "-m", __name__, name]
    return [str(settings.bin_dir / "airflow"), name]


def preload(modules: Iterable[str] = PRELOAD) -> list[str]:
    """Import what can be imported; a module that fails is left to the task that needs it, which
    then reports the error in its own log."""
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            continue
        loaded.append(name)
    return loaded


def is_airflow_process(pid: int) -> bool:
    """A recorded pid is only stopped while it still runs an ``airflow`` command line."""
    try:
        return b"airflow" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def read_pids(path: Path) -> dict[str, int]:
    try:
        return {name: int(pid) for name, pid in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


class EmbeddedAirflow(contextlib.AbstractContextManager["EmbeddedAirflow"]):
    """Start the components on entry, stop every one of them on exit, however the block ends."""

    def __init__(
        self,
        settings: EmbeddedSettings,
        env: Mapping[str, str] | None = None,
        components: Iterable[str] = COMPONENTS,
    ) -> None:
        self.settings = settings
        self.env = component_env(settings, os.environ if env is None else env)
        self.components = tuple(components)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def pids_file(self) -> Path:
        return self.settings.home / PIDS_FILE

    def __enter__(self) -> EmbeddedAirflow:
        self.stop_leftovers()
        if not port_free(self.settings.port):
            raise RuntimeError(
                f"port {self.settings.port} on 127.0.0.1 is taken; choose another with "
                f"DEMO_AIRFLOW_PORT=<port> make run"
            )
        try:
            for name in self.components:
                self.start(name)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, name: str) -> None:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with self.settings.log(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(
                component_argv(self.settings, name),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own group: Ctrl-C reaches only the demo, which then stops the whole group.
                start_new_session=True,
            )
        self.pids_file.write_text(
            json.dumps({n: p.pid for n, p in self.processes.items()}, indent=1)
        )

    def stop(self) -> None:
        """Stop the components in reverse order; a second Ctrl-C cannot cut this short."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for name in reversed(list(self.processes)):
                process = self.processes.pop(name)
                stop_group(process.pid, reap=process.poll)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            self.pids_file.unlink(missing_ok=True)
        finally:
            signal.signal(signal.SIGINT, previous)

    def stop_leftovers(self) -> None:
        """Components recorded by a demo that was killed before it could stop them."""
        for pid in read_pids(self.pids_file).values():
            if is_airflow_process(pid):
                stop_group(pid)
        self.pids_file.unlink(missing_ok=True)

    def check_running(self) -> None:
        """Fail fast, naming the log, when a component has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.settings.log(name)
                raise RuntimeError(f"airflow {name} exited with {process.returncode}; see {log}")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready after {timeout:.0f} s; logs in {self.logs()}")
            time.sleep(1)

    def wait_api(self, timeout: float = 180) -> None:
        self.wait_until(
            lambda: http_ok(f"{self.settings.url}/execution/health"), "the api-server", timeout
        )

    def logs(self) -> str:
        return f"{self.settings.home}/run-*.log"


def main(argv: list[str] | None = None) -> int:
    """``python -m governance_airflow.embedded <airflow command>``: preload, then run it."""
    args = sys.argv[1:] if argv is None else argv
    preload()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    return airflow_main() or 0


if __name__ == "__main__":
    sys.exit(main())

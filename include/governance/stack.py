"""The production topology as local processes: docker-compose's services started from this
project's virtual environment on one machine, without Docker, on the PostgreSQL and Redis the
machine already runs.

    python -m governance.stack up       # start what is not running, wait until all is healthy
    python -m governance.stack status   # each service: pid, health
    python -m governance.stack down     # stop every recorded process, then forget it
    python -m governance.stack env      # the environment the Airflow processes run with

``docker/docker-compose.yaml`` is the one definition: each service's command and environment
are read from it and translated by the rules in ``stack_compose.Localizer`` (service host names
to loopback, container paths to the stack folder, compose variables to secrets generated once
into the stack folder), so the two cannot drift. Only the two things compose gets from Docker are
set here: distinct worker host names and log-server ports (containers have their own network
stack).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.processes import http_ok, is_zombie, signal_group
from governance.stack_compose import (
    COMPOSE_FILE,
    PROJECT_ROOT,
    Localizer,
    StackSettings,
    read_compose,
    substitute,
)

# The compose services this stack runs, in start order; the rest (Postgres, Redis: the machine's
# own; Prometheus and Grafana: not installable here) are left out, statsd-exporter is replaced by
# a UDP listener that logs what it receives.
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
)
SERVICES = ("statsd", "mlflow", *AIRFLOW_SERVICES)
SECRETS = (
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_DB_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_ADMIN_PASSWORD",
)
ADMIN_USER = "admin"
# The compose databases this stack creates on the machine's PostgreSQL (docker/postgres's init).
DATABASES = ("airflow", "mlflow", "optuna")


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    health: Callable[[], bool]


class Stack:
    """Start, check and stop the local topology described by the compose file."""

    def __init__(self, settings: StackSettings | None = None, compose: Path = COMPOSE_FILE):
        self.settings = settings or StackSettings.from_env()
        self.compose = read_compose(compose)
        self.localizer = Localizer(self.settings)

    # ------------------------------------------------------------ definition

    def variables(self) -> dict[str, str]:
        """The compose file's variables: secrets generated once (mode 0600) into the stack."""
        path = self.settings.root / "secrets.env"
        found: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                key, _, value = line.partition("=")
                found[key] = value
        missing = [name for name in SECRETS if name not in found]
        if missing:
            from cryptography.fernet import Fernet

            for name in missing:
                found[name] = (
                    Fernet.generate_key().decode()
                    if name == "AIRFLOW_FERNET_KEY"
                    else secrets.token_hex(24)
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(found.items())))
            tmp.chmod(0o600)
            tmp.replace(path)
        return {**found, "AIRFLOW_ADMIN_USER": ADMIN_USER}

    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow process runs with: compose's, localized, plus where
        this project's files are (the image copies them to fixed paths instead)."""
        service = self.compose["services"]["airflow-scheduler"]
        s = self.settings
        env = self.localizer.environment(service["environment"], self.variables())
        env.update(
            {
                "AIRFLOW_HOME": str(s.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(s.logs / "airflow"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(s.airflow_port),
                "AIRFLOW__API__BASE_URL": s.airflow_url,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
                    s.scheduler_health_port
                ),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(s.log_server_port),
                "PYTHONPATH": os.pathsep.join(
                    [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "dags")]
                ),
                "GOVERNANCE_CONTRACTS_DIR": os.environ.get(
                    "GOVERNANCE_CONTRACTS_DIR", str(PROJECT_ROOT / "include" / "contracts")
                ),
            }
        )
        return env

    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env["PATH"] = f"{self.settings.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def services(self) -> list[Service]:
        s = self.settings
        compose = self.compose["services"]
        airflow_env = self.airflow_env()
        found = [self.statsd_service(), self.mlflow_service(compose["mlflow"])]
        workers = 0
        for name in AIRFLOW_SERVICES:
            command = compose[name]["command"].split()
            env = {**self.base_env(), **airflow_env}
            service_env = compose[name].get("environment") or {}
            for key in service_env:
                if key not in airflow_env and not key.startswith("DUMB_INIT"):
                    env[key] = self.localizer.value(substitute(str(service_env[key]), {}))
            if command[0] == "celery":
                # Containers differ by host name; here each worker is named by its service.
                env["GOVERNANCE_HOSTNAME"] = name
                env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(s.log_server_port + workers)
                workers += 1
                command += ["--celery-hostname", f"{name}@%h"]
            argv = [str(s.bin_dir / "airflow"), *command]
            found.append(Service(name, argv, env, self.health_check(name, command)))
        return found

    def mlflow_service(self, spec: Mapping[str, Any]) -> Service:
        s = self.settings
        args = [a for a in spec["entrypoint"] if a not in ("/usr/bin/dumb-init", "--")]
        args[0] = str(s.bin_dir / args[0])
        for raw in spec["command"]:
            option, _, value = raw.partition("=")
            if option == "--host":
                value = "127.0.0.1"
            elif option == "--port":
                value = str(s.mlflow_port)
            args.append(f"{option}={self.localizer.value(value)}" if value else option)
        env = {**self.base_env()}
        env.update(self.localizer.environment(spec["environment"], self.variables()))
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        return Service("mlflow", args, env, lambda: http_ok(f"{s.mlflow_url}/health"))

    def statsd_service(self) -> Service:
        s = self.settings
        argv = [sys.executable, "-m", "governance.stack", "statsd", "--port", str(s.statsd_port)]
        env = {**self.base_env(), "PYTHONPATH": str(PROJECT_ROOT / "include")}
        return Service("statsd", argv, env, lambda: True)

    def health_check(self, name: str, command: list[str]) -> Callable[[], bool]:
        s = self.settings
        if name == "airflow-apiserver":
            return lambda: http_ok(f"{s.airflow_url}/api/v2/version")
        if name == "airflow-scheduler":
            return lambda: http_ok(f"http://127.0.0.1:{s.scheduler_health_port}/health")
        log = s.logs / f"{name}.log"
        ready = {
            "celery": " ready.",
            "dag-processor": "Starting the Dag Processor Job",
            "triggerer": "Starting the triggerer",
        }
        marker = ready["celery" if command[0] == "celery" else command[0]]
        return lambda: log.exists() and marker in log.read_text(errors="replace")

    # ------------------------------------------------------------ lifecycle

    def prepare(self, progress: Callable[[str], None] = print) -> None:
        """Databases, metadata migration, the settings file, the admin's password."""
        s = self.settings
        for folder in (s.airflow_home, s.logs, s.pids, s.root / "data", s.root / "mlflow"):
            folder.mkdir(parents=True, exist_ok=True)
        for database in DATABASES:
            if create_database(s, s.database(database)):
                progress(f"created database {s.database(database)}")
        env = {**self.base_env(), **self.airflow_env()}
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.parent.mkdir(parents=True, exist_ok=True)
        password = self.variables()["AIRFLOW_ADMIN_PASSWORD"]
        passwords.write_text(json.dumps({ADMIN_USER: password}) + "\n")
        passwords.chmod(0o600)
        progress("migrating the Airflow metadata database")
        for argv in (
            [str(s.bin_dir / "airflow"), "db", "migrate"],
            [sys.executable, "-m", "governance_airflow.settings", "airflow_settings.yaml"],
        ):
            with (s.logs / "init.log").open("a") as log:
                done = subprocess.run(
                    argv, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
                )
            if done.returncode:
                raise RuntimeError(f"{' '.join(argv)} failed; see {s.logs / 'init.log'}")

    def up(self, timeout: float = 300, progress: Callable[[str], None] = print) -> None:
        self.prepare(progress)
        services = self.services()
        for service in services:
            if self.pid(service.name):
                continue
            self.start(service)
            progress(f"started {service.name}")
        deadline = time.monotonic() + timeout
        waiting = [service for service in services]
        while waiting:
            for service in list(waiting):
                if not self.pid(service.name):
                    raise RuntimeError(
                        f"{service.name} exited; see {self.settings.logs / service.name}.log"
                    )
                if service.health():
                    waiting.remove(service)
                    progress(f"healthy {service.name}")
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                raise TimeoutError(f"not healthy after {timeout:.0f} s: {names}")
            time.sleep(1)
        progress(
            f"stack up: Airflow {self.settings.airflow_url} ({ADMIN_USER}, password in "
            f"{self.settings.root / 'secrets.env'}), MLflow {self.settings.mlflow_url}, "
            f"logs {self.settings.logs}"
        )

    def start(self, service: Service) -> int:
        s = self.settings
        with (s.logs / f"{service.name}.log").open("ab") as log:
            process = subprocess.Popen(
                service.argv,
                env=service.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (s.pids / f"{service.name}.pid").write_text(str(process.pid))
        return process.pid

    def pid(self, name: str) -> int | None:
        """The recorded process of a service, if it is still running."""
        path = self.settings.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return None if is_zombie(pid) else pid

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 30) -> bool:
        """Signal the service's whole process group; SIGKILL what is left after ``wait``."""
        pid = self.pid(name)
        path = self.settings.pids / f"{name}.pid"
        if pid is None:
            path.unlink(missing_ok=True)
            return False
        signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while self.pid(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        signal_group(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)
        return True

    def down(self, progress: Callable[[str], None] = print) -> None:
        for name in reversed(SERVICES):
            if self.stop(name):
                progress(f"stopped {name}")

    def status(self) -> dict[str, str]:
        found = {}
        for service in self.services():
            pid = self.pid(service.name)
            found[service.name] = (
                "not running"
                if pid is None
                else f"pid {pid}, " + ("healthy" if service.health() else "starting")
            )
        return found


@contextlib.contextmanager
def _admin_connection(settings: StackSettings) -> Iterator[Any]:
    """A cursor on the machine's PostgreSQL, outside any transaction (CREATE and DROP DATABASE
    cannot run in one)."""
    import psycopg2

    connection = psycopg2.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_user,
        dbname="postgres",
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def create_database(settings: StackSettings, name: str) -> bool:
    """Create ``name`` on the machine's PostgreSQL unless it exists; True when created."""
    from psycopg2 import sql

    with _admin_connection(settings) as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone():
            return False
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_databases(settings: StackSettings) -> None:
    """Drop the stack's databases (a test stack's clean-up)."""
    from psycopg2 import sql

    with _admin_connection(settings) as cursor:
        for database in DATABASES:
            name = sql.Identifier(settings.database(database))
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def serve_statsd(port: int) -> None:
    """A statsd collector: every UDP packet's lines, timestamped, on stdout (the stack's log)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        packet, _ = sock.recvfrom(65535)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        for line in packet.decode(errors="replace").splitlines():
            print(stamp, line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--timeout", type=float, default=300)
    sub.add_parser("down")
    sub.add_parser("status")
    sub.add_parser("env")
    statsd = sub.add_parser("statsd")
    statsd.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "statsd":
        serve_statsd(args.port)
        return 0
    stack = Stack()
    if args.command == "up":
        stack.up(timeout=args.timeout)
    elif args.command == "down":
        stack.down()
    elif args.command == "status":
        for name, state in stack.status().items():
            print(f"{name:24} {state}")
    else:
        for key, value in sorted(stack.airflow_env().items()):
            print(f"export {key}={json.dumps(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the production stack runs on this machine (its ports, folder, databases) and how a
docker-compose value becomes this machine's: compose variables substituted, service host names
turned into loopback addresses with the stack's ports and databases, container paths into the
stack folder."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker" / "docker-compose.yaml"
CONTAINER_ROOT = "/opt/airflow"


@dataclass(frozen=True)
class StackSettings:
    """Where the stack lives and which ports and databases it takes; every field can be set
    from the environment (``GOVERNANCE_STACK_<FIELD>``), so a test stack never meets a user's."""

    root: Path = PROJECT_ROOT / ".stack"
    name: str = "governance_stack"
    airflow_port: int = 8080
    mlflow_port: int = 5000
    statsd_port: int = 9125
    scheduler_health_port: int = 8974
    log_server_port: int = 8793
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StackSettings:
        values: dict[str, Any] = {}
        for name, default in cls.__dataclass_fields__.items():
            raw = env.get(f"GOVERNANCE_STACK_{name.upper()}")
            if raw is not None:
                values[name] = _typed(str(default.type), raw)
        return cls(**values)

    def database(self, compose_name: str) -> str:
        return f"{self.name}_{compose_name}"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"


def _typed(kind: str, raw: str) -> Any:
    """A field's value from its environment string (the annotations are strings here)."""
    if kind == "Path":
        return Path(raw)
    return int(raw) if kind == "int" else raw


# ---------------------------------------------------------------- compose -> local


VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:[?-])(?P<arg>[^}]*))?\}")
URL = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+]*)://(?:(?P<auth>[^@/\s]*)@)?(?P<host>[A-Za-z0-9.-]+)"
    r"(?::(?P<port>\d+))?(?P<path>/[^\s\"',]*)?"
)


def substitute(value: str, variables: Mapping[str, str]) -> str:
    """Compose's variable syntax: ``${A}``, ``${A:-default}``, ``${A:?error}``; ``$$`` is ``$``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in variables and (variables[name] or op is None):
            return variables[name]
        if op == ":-":
            return arg or ""
        raise KeyError(f"{name} is not set ({arg or 'required'})")

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


@dataclass(frozen=True)
class Localizer:
    """The rules that turn a container's value into this machine's: service host names become
    loopback addresses with this stack's ports and databases, ``/opt/airflow`` the stack folder."""

    settings: StackSettings

    def url(self, match: re.Match[str]) -> str:
        host, scheme = match["host"], match["scheme"]
        path = match["path"] or ""
        s = self.settings
        if host == "postgres":
            database = path.lstrip("/")
            return f"{scheme}://{s.postgres_user}@{s.postgres_host}:{s.postgres_port}/" + (
                s.database(database)
            )
        if host == "redis":
            return f"{scheme}://{s.redis_host}:{s.redis_port}/{s.redis_db}"
        if host == "mlflow":
            return f"{scheme}://127.0.0.1:{s.mlflow_port}{path}"
        if host in ("airflow-apiserver", "localhost"):
            return f"{scheme}://127.0.0.1:{s.airflow_port}{path}"
        return match[0]

    def value(self, value: str) -> str:
        if value.startswith("{"):
            return json.dumps(self.json(json.loads(value)))
        if value == "statsd-exporter":
            return "127.0.0.1"
        value = URL.sub(self.url, value)
        return value.replace(CONTAINER_ROOT, str(self.settings.root))

    def json(self, value: Any) -> Any:
        if isinstance(value, dict):
            local = {key: self.json(item) for key, item in value.items()}
            if local.get("host") == "mlflow":
                local["host"], local["port"] = "127.0.0.1", self.settings.mlflow_port
            return local
        return self.value(value) if isinstance(value, str) else value

    def environment(self, env: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for key, raw in env.items():
            value = substitute(str(raw), variables)
            if key == "AIRFLOW__METRICS__STATSD_PORT" or key == "GOVERNANCE_STATSD_PORT":
                value = str(self.settings.statsd_port)
            out[key] = self.value(value)
        return out


def read_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))

"""Applies ``airflow_settings.yaml`` (the Astro CLI format) through Airflow's import commands.

The same file drives a local run and a deployment: ``make setup`` applies its pools, connections
and variables to the embedded Airflow home, so a DAG that needs the ``gpu`` pool finds it.

    python -m governance_airflow.settings airflow_settings.yaml
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml


def read_settings(path: Path) -> dict[str, list[dict[str, Any]]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = raw.get("airflow") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: 'airflow' must be a mapping")
    return {key: list(section.get(key) or []) for key in ("connections", "pools", "variables")}


# Astro CLI connection keys -> the keys of ``airflow connections import``'s JSON.
_CONNECTION_KEYS = {
    "conn_type": "conn_type",
    "conn_description": "description",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
    "conn_extra": "extra",
}


def import_files(settings: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The file of each of Airflow's own import commands, translated from the Astro format."""
    connections = {
        item["conn_id"]: {
            target: item[source] for source, target in _CONNECTION_KEYS.items() if source in item
        }
        for item in settings["connections"]
    }
    pools = {
        pool["pool_name"]: {
            "slots": int(pool["pool_slot"]),
            "description": pool.get("pool_description", ""),
            "include_deferred": False,
        }
        for pool in settings["pools"]
    }
    variables = {item["variable_name"]: item["variable_value"] for item in settings["variables"]}
    return {"connections": connections, "pools": pools, "variables": variables}


# Each kind's import command; every one replaces what exists, so a second apply updates.
_IMPORT_COMMANDS = {
    "connections": ["connections", "import", "--overwrite"],
    "pools": ["pools", "import"],
    "variables": ["variables", "import", "--action-on-existing-key", "overwrite"],
}


def apply_settings(path: Path) -> dict[str, int]:
    """Create or update every object in the file through ``airflow connections|pools|variables
    import`` (the metadata database's own interface); returns how many of each were applied."""
    files = import_files(read_settings(path))
    with tempfile.TemporaryDirectory(prefix="airflow-settings-") as folder:
        for kind, objects in files.items():
            if not objects:
                continue
            file = Path(folder) / f"{kind}.json"
            file.write_text(json.dumps(objects), encoding="utf-8")
            command = [sys.executable, "-m", "airflow", *_IMPORT_COMMANDS[kind], str(file)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(
                    f"{path}: importing {kind} failed ({done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}"
                )
    return {kind: len(objects) for kind, objects in files.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "airflow_settings.yaml")
    applied = apply_settings(path)
    print(f"{path}: applied " + ", ".join(f"{n} {kind}" for kind, n in applied.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

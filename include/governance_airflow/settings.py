"""Applies ``airflow_settings.yaml`` (the Astro CLI format) to the metadata database.

The same file drives a local run and a deployment: ``make setup`` applies its pools, connections
and variables to the embedded Airflow home, so a DAG that needs the ``gpu`` pool finds it.

    python -m governance_airflow.settings airflow_settings.yaml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def read_settings(path: Path) -> dict[str, list[dict[str, Any]]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = raw.get("airflow") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: 'airflow' must be a mapping")
    return {key: list(section.get(key) or []) for key in ("connections", "pools", "variables")}


def apply_settings(path: Path) -> dict[str, int]:
    """Create or update every object in the file; returns how many of each were applied."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    settings = read_settings(path)
    with create_session() as session:
        for pool in settings["pools"]:
            Pool.create_or_update_pool(
                name=pool["pool_name"],
                slots=int(pool["pool_slot"]),
                description=pool.get("pool_description", ""),
                include_deferred=False,
                session=session,
            )
        for item in settings["connections"]:
            session.query(Connection).filter(Connection.conn_id == item["conn_id"]).delete()
            extra = item.get("conn_extra")
            session.add(
                Connection(
                    conn_id=item["conn_id"],
                    conn_type=item.get("conn_type"),
                    description=item.get("conn_description"),
                    host=item.get("conn_host"),
                    schema=item.get("conn_schema"),
                    login=item.get("conn_login"),
                    password=item.get("conn_password"),
                    port=item.get("conn_port"),
                    extra=json.dumps(extra) if isinstance(extra, dict) else extra,
                )
            )
    for item in settings["variables"]:
        Variable.set(item["variable_name"], item["variable_value"])
    return {key: len(values) for key, values in settings.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "airflow_settings.yaml")
    applied = apply_settings(path)
    print(f"{path}: applied " + ", ".join(f"{n} {kind}" for kind, n in applied.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

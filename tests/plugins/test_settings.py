"""airflow_settings.yaml is applied to the metadata database: pools, connections, variables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance_airflow.settings import apply_settings, read_settings

pytestmark = pytest.mark.airflow
PROJECT_ROOT = Path(__file__).resolve().parents[2]

SETTINGS = """
airflow:
  connections:
    - conn_id: tracking_test
      conn_type: http
      conn_host: mlflow.internal
      conn_port: 5000
      conn_extra: {tracking_uri: "http://mlflow.internal:5000"}
  pools:
    - pool_name: gpu_test
      pool_slot: 3
      pool_description: test pool
  variables:
    - variable_name: governance_test_var
      variable_value: "42"
"""


def test_every_object_is_created_and_a_second_apply_updates_it(
    tmp_path: Path, airflow_db: Path
) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(SETTINGS)
    assert apply_settings(path) == {"connections": 1, "pools": 1, "variables": 1}
    path.write_text(
        SETTINGS.replace("pool_slot: 3", "pool_slot: 5")
        .replace("conn_port: 5000", "conn_port: 5001")
        .replace('"42"', '"43"')
    )
    apply_settings(path)
    # Read back through the CLI a deployment's operator uses, from the same metadata database.
    (pool,) = [p for p in airflow_json("pools", "list") if p["pool"] == "gpu_test"]
    assert (int(pool["slots"]), pool["description"]) == (5, "test pool")
    (connection,) = airflow_json("connections", "get", "tracking_test")
    assert (connection["host"], int(connection["port"])) == ("mlflow.internal", 5001)
    assert connection["extra_dejson"]["tracking_uri"] == "http://mlflow.internal:5000"
    variable = subprocess.run(
        [sys.executable, "-m", "airflow", "variables", "get", "governance_test_var"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert variable.stdout.strip() == "43"


def airflow_json(*command: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *command, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_failed_import_names_the_kind_and_airflows_message(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(SETTINGS)
    # A metadata database that cannot be reached: Airflow's own command fails, and says why.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://nobody@127.0.0.1:9/x")
    with pytest.raises(RuntimeError, match=r"importing connections failed \(1\): .*"):
        apply_settings(path)


def test_the_shipped_file_declares_the_gpu_pool_and_the_mlflow_connection() -> None:
    from governance import tracking

    settings = read_settings(PROJECT_ROOT / "airflow_settings.yaml")
    assert "gpu" in {pool["pool_name"] for pool in settings["pools"]}
    (mlflow,) = [c for c in settings["connections"] if c["conn_id"] == "mlflow_default"]
    uri = tracking.tracking_uri(mlflow["conn_extra"]["tracking_uri"])
    assert uri == f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    assert tracking.tracking_uri("sqlite:////srv/mlflow.db") == "sqlite:////srv/mlflow.db"
    assert tracking.tracking_uri("http://mlflow:5000") == "http://mlflow:5000"

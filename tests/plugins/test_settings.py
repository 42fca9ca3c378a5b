"""airflow_settings.yaml is applied to the metadata database: pools, connections, variables."""

from __future__ import annotations

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
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    path = tmp_path / "airflow_settings.yaml"
    path.write_text(SETTINGS)
    assert apply_settings(path) == {"connections": 1, "pools": 1, "variables": 1}
    path.write_text(SETTINGS.replace("pool_slot: 3", "pool_slot: 5"))
    apply_settings(path)
    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == "gpu_test").one()
        connection = session.query(Connection).filter(Connection.conn_id == "tracking_test").one()
        assert pool.slots == 5
        assert (connection.host, connection.port) == ("mlflow.internal", 5000)
        assert connection.extra_dejson["tracking_uri"] == "http://mlflow.internal:5000"
    assert Variable.get("governance_test_var") == "42"


def test_the_shipped_file_declares_the_gpu_pool_and_the_mlflow_connection() -> None:
    from governance import tracking

    settings = read_settings(PROJECT_ROOT / "airflow_settings.yaml")
    assert "gpu" in {pool["pool_name"] for pool in settings["pools"]}
    (mlflow,) = [c for c in settings["connections"] if c["conn_id"] == "mlflow_default"]
    uri = tracking.tracking_uri(mlflow["conn_extra"]["tracking_uri"])
    assert uri == f"sqlite:///{PROJECT_ROOT / 'mlflow' / 'mlflow.db'}"
    assert tracking.tracking_uri("sqlite:////srv/mlflow.db") == "sqlite:////srv/mlflow.db"
    assert tracking.tracking_uri("http://mlflow:5000") == "http://mlflow:5000"

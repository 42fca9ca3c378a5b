"""The local stack is docker-compose translated: same services, same settings, local addresses,
and drivers that are installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from governance.stack import (
    AIRFLOW_SERVICES,
    DATABASES,
    SECRETS,
    Stack,
    StackSettings,
    create_database,
    drop_databases,
    read_compose,
    substitute,
)

SETTINGS = StackSettings(name="unit", airflow_port=18181, mlflow_port=15151, redis_db=9)
COMPOSE_SERVICE_HOSTS = ("postgres", "redis", "mlflow", "statsd-exporter", "airflow-apiserver")


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(StackSettings(**{**SETTINGS.__dict__, "root": tmp_path / "stack"}))


def test_compose_variables_are_substituted_as_compose_does() -> None:
    assert substitute("a ${X} b", {"X": "1"}) == "a 1 b"
    assert substitute("${X:-fallback}", {}) == "fallback"
    assert substitute("${X:-fallback}", {"X": ""}) == "fallback"
    assert substitute("$${HOSTNAME}", {}) == "${HOSTNAME}"
    with pytest.raises(KeyError, match="set X"):
        substitute("${X:?set X}", {})


def test_every_compose_setting_reaches_the_local_processes(stack: Stack) -> None:
    compose = read_compose()["services"]["airflow-scheduler"]["environment"]
    local = stack.airflow_env()
    assert set(compose) <= set(local)
    for key, value in local.items():
        assert "/opt/airflow" not in value, key
        for host in COMPOSE_SERVICE_HOSTS:
            assert f"//{host}:" not in value and f"@{host}:" not in value, (key, value)


def test_addresses_point_at_this_machine_and_the_stacks_own_databases(stack: Stack) -> None:
    env = stack.airflow_env()
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/unit_airflow"
    )
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
        "db+postgresql+psycopg://postgres@127.0.0.1:5432/unit_airflow"
    )
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/9"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:15151"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18181/execution/"
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "127.0.0.1"
    connection = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert (connection["host"], connection["port"]) == ("127.0.0.1", 15151)
    assert connection["extra"]["tracking_uri"] == "http://127.0.0.1:15151"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["GOVERNANCE_DATA_ROOT"] == str(stack.settings.root / "data")
    optuna = json.loads(env["AIRFLOW_CONN_OPTUNA_DEFAULT"])
    assert optuna["extra"]["storage_url"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/unit_optuna"
    )


def test_the_database_urls_load_installed_drivers(stack: Stack) -> None:
    """Each URL the stack (and compose) uses names a driver this environment has: psycopg2 for
    the metadata database, asyncpg for Airflow's async engine, psycopg 3 for Celery's results."""
    env = stack.airflow_env()
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    results = make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    for url in (metadata, metadata.set(drivername="postgresql+asyncpg"), results):
        url.get_dialect().import_dbapi()
    mlflow = read_compose()["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    make_url(substitute(mlflow, {"MLFLOW_DB_PASSWORD": "x"})).get_dialect().import_dbapi()


def test_the_celery_executor_and_its_broker_import() -> None:
    import kombu.transport.redis  # noqa: F401
    from airflow.providers.celery.executors import celery_executor_utils  # noqa: F401
    from airflow.providers.celery.executors.celery_executor import CeleryExecutor

    assert CeleryExecutor.__name__ == "CeleryExecutor"


def test_each_compose_service_is_a_local_process(stack: Stack) -> None:
    services = {service.name: service for service in stack.services()}
    assert set(services) == {"statsd", "mlflow", *AIRFLOW_SERVICES}
    default, gpu = services["airflow-worker"], services["airflow-worker-gpu"]
    assert default.argv[1:5] == ["celery", "worker", "--queues", "default"]
    assert gpu.argv[1:7] == ["celery", "worker", "--queues", "gpu", "--concurrency", "1"]
    assert default.env["GOVERNANCE_HOSTNAME"] != gpu.env["GOVERNANCE_HOSTNAME"]
    ports = {s.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for s in (default, gpu)}
    assert len(ports) == 2
    mlflow = services["mlflow"].argv
    assert "--host=127.0.0.1" in mlflow and "--port=15151" in mlflow
    assert f"--artifacts-destination={stack.settings.root}/mlflow/artifacts" in mlflow


def test_secrets_are_generated_once_and_kept_private(stack: Stack) -> None:
    first = stack.variables()
    assert all(first[name] for name in SECRETS)
    assert stack.variables() == first
    assert (stack.settings.root / "secrets.env").stat().st_mode & 0o077 == 0


def test_settings_come_from_the_environment() -> None:
    env = {"GOVERNANCE_STACK_AIRFLOW_PORT": "9999", "GOVERNANCE_STACK_ROOT": "/tmp/s"}
    settings = StackSettings.from_env(env)
    assert (settings.airflow_port, settings.root) == (9999, Path("/tmp/s"))


def test_the_databases_are_created_once_and_dropped_on_the_machines_postgres() -> None:
    import psycopg2

    settings = StackSettings(name="governance_unit_databases")
    names = [settings.database(name) for name in DATABASES]

    def existing() -> set[str]:
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
                return {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()

    drop_databases(settings)
    try:
        assert [create_database(settings, name) for name in names] == [True] * len(DATABASES)
        assert create_database(settings, names[0]) is False
        assert existing() == set(names)
    finally:
        drop_databases(settings)
    assert existing() == set()

"""Where a fine-tune run's MLflow store and dataset version come from."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from governance.contracts import contracts_dir, load_contract
from governance_airflow.finetune_runtime import (
    connection_tracking_uri,
    finetune_request,
    study_storage,
    triggering_version,
)


def test_no_connection_leaves_the_choice_to_the_environment_or_the_project_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    assert connection_tracking_uri() is None


def test_the_connection_gives_its_uri_or_its_extra_tracking_uri(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = {"conn_type": "http", "host": "mlflow", "port": 5000}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(server))
    assert connection_tracking_uri() == "http://mlflow:5000"
    explicit = {**server, "extra": {"tracking_uri": "postgresql://db/mlflow"}}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(explicit))
    assert connection_tracking_uri() == "postgresql://db/mlflow"


def event(version: str | None) -> SimpleNamespace:
    return SimpleNamespace(extra={"version": version} if version else {})


def test_the_version_is_the_param_else_the_newest_triggering_event_else_none() -> None:
    contract = load_contract(contracts_dir() / "demo_reviews.yaml")
    events = {"curated_demo_reviews": [event("2026-01-02"), event("2026-01-03"), event(None)]}
    assert triggering_version({"triggering_asset_events": events}) == "2026-01-03"
    assert triggering_version({}) is None
    triggered = {"params": {"epochs": 4}, "triggering_asset_events": events}
    request = finetune_request(contract, triggered)
    assert (request.version, request.trial.epochs) == ("2026-01-03", 4)
    assert request.trial.max_seq_length == contract.finetune.max_seq_length
    chosen = {"params": {"version": "2026-01-01"}, "triggering_asset_events": events}
    assert finetune_request(contract, chosen).version == "2026-01-01"


def test_the_study_storage_is_the_connection_else_the_environment_else_the_core_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OPTUNA_DEFAULT", raising=False)
    monkeypatch.delenv("GOVERNANCE_OPTUNA_STORAGE", raising=False)
    assert study_storage() is None
    monkeypatch.setenv("GOVERNANCE_OPTUNA_STORAGE", "sqlite:////tmp/studies.db")
    assert study_storage() == "sqlite:////tmp/studies.db"
    url = "postgresql+psycopg2://optuna@db:5432/optuna"
    connection = {"conn_type": "generic", "extra": {"storage_url": url}}
    monkeypatch.setenv("AIRFLOW_CONN_OPTUNA_DEFAULT", json.dumps(connection))
    assert study_storage() == url

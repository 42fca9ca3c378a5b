"""The watchdog DAG through Airflow on a healthy state; its sensors and the failure callback on
stale states."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from governance import tracking
from governance.contracts import contracts_dir, load_contract
from governance.history import DayRecord, Ledger, Settlement, data_digest, history_digest
from governance.tracking import promotion
from governance.watchdog import final_failures
from governance_airflow.failures import record_failure
from governance_airflow.watchdog_factory import (
    WatchdogSensor,
    build_watchdog_dag,
    check_champion,
    check_freshness,
)
from tests.conftest import private_mlflow
from tests.integration.helpers import task_states
from tests.manifests import write_manifest

pytestmark = pytest.mark.airflow
CONTRACT = load_contract(contracts_dir() / "sms_spam.yaml")
NO_HISTORY = history_digest([])


def publish(root: Path, day: dt.date) -> None:
    """A published version with no data files, settled as the dataset's only day."""
    history = {"origin": day.isoformat(), "digest": NO_HISTORY, "versions": []}
    write_manifest(root / "curated" / "sms_spam" / day.isoformat(), published=True, history=history)
    record = DayRecord(day.isoformat(), Settlement.PUBLISHED, data_digest({}), NO_HISTORY)
    Ledger(root, "sms_spam", day.isoformat()).settle(record)


def crown_a_champion(root: Path) -> None:
    client = tracking.connect()
    name = promotion.registered_model_name(CONTRACT.name)
    client.create_registered_model(name)
    version = client.create_model_version(name, source=str(root), run_id=None)
    client.set_registered_model_alias(name, tracking.CHAMPION, version.version)


def test_a_healthy_state_passes_every_watchdog_sensor(tmp_path: Path, airflow_db: Path) -> None:
    with private_mlflow(tmp_path) as base:
        today = dt.datetime.now(dt.UTC).date()
        publish(base / "data", today)
        crown_a_champion(base)
        contract = CONTRACT.model_copy(update={"start_date": today.isoformat()})
        dag_run = build_watchdog_dag([contract]).test()
    states = task_states(dag_run)
    assert {task: state for task, (state, _) in states.items()} == {
        "fresh_sms_spam": "success",
        "history_sms_spam": "success",
        "champion_sms_spam": "success",
        "no_task_failed_for_good": "success",
    }


def test_stale_data_fails_the_sensor_saying_which_dataset_and_how_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNANCE_DATA_ROOT", str(tmp_path))
    publish(tmp_path, dt.datetime.now(dt.UTC).date() - dt.timedelta(days=5))
    sensor = WatchdogSensor(task_id="fresh", check=check_freshness, check_args=(CONTRACT,))
    assert sensor.poke({}) is False

    def times_out(self, context):
        raise AirflowSensorTimeout("Sensor has timed out")

    monkeypatch.setattr(BaseSensorOperator, "execute", times_out)
    with pytest.raises(AirflowSensorTimeout, match=r"sms_spam: no curated version for .* late"):
        sensor.execute({})


def test_an_old_champion_is_reported_with_its_age(tmp_path: Path) -> None:
    with private_mlflow(tmp_path):
        assert check_champion(CONTRACT).message.endswith("no champion registered")
        crown_a_champion(tmp_path)
        assert check_champion(CONTRACT).ok
        strict = CONTRACT.model_copy(
            update={
                "finetune": CONTRACT.finetune.model_copy(update={"max_champion_age_days": 1e-9})
            }
        )
        result = check_champion(strict)
        assert not result.ok and "days over the" in result.message


def test_a_task_that_failed_for_good_is_recorded_for_the_watchdog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVERNANCE_DATA_ROOT", str(tmp_path))
    ti = SimpleNamespace(dag_id="govern_sms_spam", task_id="publish", try_number=3)
    context = {
        "ti": ti,
        "task": SimpleNamespace(retries=2),
        "run_id": "scheduled__2026-11-28",
        "exception": OSError("disk full"),
    }
    record_failure(context)
    now = dt.datetime.now(dt.UTC)
    (found,) = final_failures(tmp_path, now - dt.timedelta(minutes=5), now)
    assert (found["task_id"], found["try_number"], found["max_tries"]) == ("publish", 3, 3)
    assert found["error"] == "disk full"


def test_the_watchdog_dag_has_a_freshness_history_and_champion_sensor_per_dataset() -> None:
    contracts = [CONTRACT, load_contract(contracts_dir() / "demo_reviews.yaml")]
    dag = build_watchdog_dag(contracts)
    assert set(dag.task_ids) == {
        "fresh_sms_spam",
        "history_sms_spam",
        "champion_sms_spam",
        "fresh_demo_reviews",
        "history_demo_reviews",
        "champion_demo_reviews",
        "no_task_failed_for_good",
    }
    assert all(task.mode == "reschedule" for task in dag.tasks)

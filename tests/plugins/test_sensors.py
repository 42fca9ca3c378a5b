from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from governance.contracts import contracts_dir, load_contract
from governance_airflow.sensors import LandingPartitionSensor

DAY = "2026-03-04"


def context(day: str | None = None) -> dict:
    start = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    return {"params": {"day": day}, "data_interval_start": start, "logical_date": start}


@pytest.fixture
def sensor(data_root: Path) -> LandingPartitionSensor:
    contract = load_contract(contracts_dir() / "senti4sd_gold.yaml")
    return LandingPartitionSensor(
        task_id="wait", contract=contract, mode="poke", poke_interval=0.01, timeout=0.05
    )


def test_waits_for_a_missing_or_empty_partition(sensor, data_root: Path) -> None:
    partition = data_root / "landing" / "senti4sd_gold" / DAY
    assert sensor.poke(context()) is False
    partition.mkdir(parents=True)
    assert sensor.poke(context()) is False
    (partition / "_SUCCESS").write_text("")
    (partition / ".hidden.csv").write_text("x")
    (partition / "notes.txt").write_text("not matching *.csv")
    assert sensor.poke(context()) is False
    (partition / "part-1.csv").write_text("study,label\n")
    assert sensor.poke(context()) is True


def test_the_day_param_wins_over_the_data_interval(sensor, data_root: Path) -> None:
    other = data_root / "landing" / "senti4sd_gold" / "2026-01-01"
    other.mkdir(parents=True)
    (other / "a.csv").write_text("x\n")
    assert sensor.poke(context()) is False
    assert sensor.poke(context(day="2026-01-01")) is True


def test_timeout_names_the_partition_and_the_wait(sensor, data_root: Path) -> None:
    (data_root / "landing" / "senti4sd_gold" / DAY).mkdir(parents=True)
    with pytest.raises(AirflowSensorTimeout) as err:
        sensor.execute(context())
    message = str(err.value)
    assert f"senti4sd_gold/{DAY} has no file matching '*.csv'" in message
    assert "after waiting" in message

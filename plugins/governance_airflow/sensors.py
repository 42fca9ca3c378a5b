"""Waits for a dataset's landing partition of the day."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from governance.contracts import Contract, data_root
from governance_airflow.runtime import resolve_day


def partition_ready(contract: Contract, partition: Any) -> bool:
    """True when the folder holds a data file (and the contract's ready marker, if it has one)."""
    if not partition.is_dir():
        return False
    marker = contract.landing.ready_marker
    if marker and not (partition / marker).exists():
        return False
    return any(
        p.is_file() and not p.name.startswith((".", "_")) and p.name != marker
        for p in partition.glob(contract.source.pattern)
    )


class LandingPartitionSensor(BaseSensorOperator):
    """Reschedules itself until the partition has landed; fails with where and how long it waited.

    Reschedule mode frees the worker slot between pokes, which matters when a dozen datasets wait
    for late feeds at the same time.
    """

    def __init__(self, *, contract: Contract, **kwargs: Any) -> None:
        landing = contract.landing
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", landing.poke_interval_minutes * 60)
        kwargs.setdefault("timeout", landing.timeout_hours * 3600)
        super().__init__(**kwargs)
        self.contract = contract

    def partition(self, context: Any) -> Any:
        return data_root() / "landing" / self.contract.name / resolve_day(context)

    def poke(self, context: Any) -> bool:
        path = self.partition(context)
        self.log.info("Looking for '%s' in %s", self.contract.source.pattern, path)
        return partition_ready(self.contract, path)

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            path = self.partition(context)
            state = "has no file matching" if path.is_dir() else "is missing, so no file matches"
            raise AirflowSensorTimeout(
                f"landing partition {path} {state} '{self.contract.source.pattern}' after waiting "
                f"{self.timeout / 3600:.2f} h ({exc})"
            ) from exc

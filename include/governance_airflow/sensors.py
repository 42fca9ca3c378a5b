"""Waits for a dataset's landing partition of the day."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from governance.contracts import Contract, data_root
from governance.landing import has_data_file
from governance.layout import DatasetLayout
from governance_airflow.runtime import resolve_day


def partition_ready(contract: Contract, partition: Any) -> bool:
    """True when the folder holds an entry to read or refuse (and the contract's ready marker,
    if it has one); nothing in it is opened."""
    if not partition.is_dir():
        return False
    marker = contract.landing.ready_marker
    if marker and not (partition / marker).exists():
        return False
    return has_data_file(contract, partition)


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
        return DatasetLayout(data_root(), self.contract.name).landing(resolve_day(context))

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
            message = (
                f"landing partition {path} {state} '{self.contract.source.pattern}' after waiting "
                f"{self.timeout / 3600:.2f} h"
            )
            if self.contract.landing.on_missing == "skip":
                self.skip_day(context, message)
            raise AirflowSensorTimeout(f"{message} ({exc})") from exc

    def skip_day(self, context: Any, message: str) -> None:
        """The contract settles a day without data as skipped: record it, skip the run's tasks."""
        from governance.reconcile import ledger_for

        day = resolve_day(context)
        ledger_for(self.contract).skip(day, message, run_id=context["run_id"])
        raise AirflowSkipException(f"{self.contract.name} {day} settled as skipped: {message}")


class HistorySettledSensor(BaseSensorOperator):
    """Waits until every earlier day of the dataset is settled (published, refused or skipped)
    and current, so that the day's dedup and split read a history no other run can change.

    The stages check the same in the data layer; this sensor only makes the wait cheap: in
    reschedule mode a day waiting for its predecessors holds no worker slot.
    """

    def __init__(self, *, contract: Contract, **kwargs: Any) -> None:
        spec = contract.history
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", spec.poke_interval_seconds)
        kwargs.setdefault("timeout", spec.timeout_hours * 3600)
        super().__init__(**kwargs)
        self.contract = contract

    def waiting_for(self, context: Any) -> list[str]:
        from governance.reconcile import ledger_for

        return ledger_for(self.contract).unsettled(resolve_day(context))

    def poke(self, context: Any) -> bool:
        waiting = self.waiting_for(context)
        if waiting:
            self.log.info(
                "%s %s waits for %d earlier day(s) to settle: %s",
                self.contract.name,
                resolve_day(context),
                len(waiting),
                ", ".join(waiting[:10]),
            )
        return not waiting

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            waiting = self.waiting_for(context)
            raise AirflowSensorTimeout(
                f"{self.contract.name} {resolve_day(context)}: after {self.timeout / 3600:.2f} h "
                f"still waiting for {', '.join(waiting[:10])} to settle (publish, refuse or skip "
                f"them: python -m governance.reconcile skip ...) ({exc})"
            ) from exc

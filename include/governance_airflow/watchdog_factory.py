"""The hourly watchdog DAG and the failure callback that feeds it.

One sensor per dataset for fresh data, for a consistent history and for the champion's age, and
one for tasks that failed for good; each fails with a sentence naming what is late and by how
much. Sensors reschedule, so a watchdog waiting for a late feed holds no worker slot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from airflow.sdk import DAG, BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from governance.contracts import Contract, data_root
from governance_airflow.factory import task_defaults

WATCHDOG_DAG_ID = "governance_watchdog"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_freshness(contract: Contract) -> Any:
    from governance.watchdog import freshness

    return freshness(data_root(), contract, _now())


def check_history(contract: Contract) -> Any:
    from governance.watchdog import history_consistent

    return history_consistent(data_root(), contract)


def check_champion(contract: Contract) -> Any:
    from governance import tracking
    from governance.tracking import promotion
    from governance.watchdog import champion_age
    from governance_airflow.finetune_runtime import connection_tracking_uri

    client = tracking.connect(connection_tracking_uri())
    name = promotion.registered_model_name(contract.name)
    version = promotion.champion(client, name)
    created = None
    if version is not None:
        created = dt.datetime.fromtimestamp(version.creation_timestamp / 1000, dt.UTC)
    return champion_age(created, name, contract.finetune.max_champion_age_days, _now())


def check_failures() -> Any:
    from governance.watchdog import no_final_failures

    return no_final_failures(data_root(), _now())


class WatchdogSensor(BaseSensorOperator):
    """Pokes a check until it holds; on timeout fails with the check's own sentence."""

    def __init__(self, *, check: Callable[..., Any], check_args: tuple = (), **kwargs: Any):
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 5 * 60)
        kwargs.setdefault("timeout", 30 * 60)
        super().__init__(**kwargs)
        self.check = check
        self.check_args = check_args
        self.last_message = ""

    def poke(self, context: Any) -> bool:
        result = self.check(*self.check_args)
        self.last_message = result.message
        self.log.info("%s", result.message)
        return result.ok

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            message = self.last_message or self.check(*self.check_args).message
            waited = f"still so after {self.timeout / 60:.0f} min"
            raise AirflowSensorTimeout(f"{message} ({waited})") from exc


def build_watchdog_dag(contracts: list[Contract]) -> DAG:
    with DAG(
        dag_id=WATCHDOG_DAG_ID,
        description=(
            "Hourly: fresh curated data, consistent histories, recent champions, "
            "no task failed for good"
        ),
        schedule="@hourly",
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        # Its sensors' failures are the alerts themselves, not failures for it to report.
        default_args={**task_defaults("data-platform"), "on_failure_callback": None},
        tags=["governance", "watchdog"],
        doc_md=__doc__,
    ) as dag:
        for contract in contracts:
            WatchdogSensor(
                task_id=f"fresh_{contract.name}", check=check_freshness, check_args=(contract,)
            )
            WatchdogSensor(
                task_id=f"history_{contract.name}", check=check_history, check_args=(contract,)
            )
            WatchdogSensor(
                task_id=f"champion_{contract.name}",
                check=check_champion,
                check_args=(contract,),
            )
        WatchdogSensor(task_id="no_task_failed_for_good", check=check_failures)
    return dag

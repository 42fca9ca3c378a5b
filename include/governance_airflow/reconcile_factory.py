"""Builds the ``reconcile_<dataset>`` DAG: recompute the days whose history changed.

Republishing a day (a fix, a late file, a gate override) marks every later day stale. After each
publication, and when triggered by hand, this DAG lists the stale days and triggers one governance
run per day. It does not order them itself: each governance run waits (``wait_for_history``) until
the days before it are settled and current, so the runs settle in order whatever runs them. A
trigger's run id names the day and the history it is computed against, so listing the same stale
day twice triggers it once.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from governance.contracts import Contract
from governance_airflow.factory import curated_asset, task_defaults


def stale_day_runs(contract: Contract) -> list[dict[str, Any]]:
    """One trigger per stale day, oldest first."""
    from governance.reconcile import ledger_for, rerun_id, stale_days

    ledger = ledger_for(contract)
    return [
        {"trigger_run_id": rerun_id(ledger, day), "conf": {"day": day}}
        for day in stale_days(ledger)
    ]


def build_reconcile_dag(contract: Contract) -> DAG:
    with DAG(
        dag_id=contract.reconcile_dag_id,
        description=f"Recompute the stale days of {contract.name}, in order",
        schedule=[curated_asset(contract)],
        catchup=False,
        max_active_runs=1,
        default_args=task_defaults(contract.owner),
        tags=["governance", contract.name, "reconcile"],
        doc_md=__doc__,
    ) as dag:

        @task
        def list_stale_days() -> list[dict[str, Any]]:
            return stale_day_runs(contract)

        TriggerDagRunOperator.partial(
            task_id="rerun_day",
            trigger_dag_id=contract.dag_id,
            logical_date=None,
            skip_when_already_exists=True,
        ).expand_kwargs(list_stale_days())
    return dag

"""Every DAG the project ships: for each valid contract its governance, fine-tune and reconcile
DAGs, and the watchdog over all of them. The one module that imports every factory (the factories
import only ``factory``'s shared parts, never each other)."""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.sdk import DAG

from governance.contracts import ContractError, contracts_dir, load_contract
from governance_airflow.factory import build_governance_dag
from governance_airflow.finetune_factory import build_finetune_dag
from governance_airflow.reconcile_factory import build_reconcile_dag
from governance_airflow.watchdog_factory import WATCHDOG_DAG_ID, build_watchdog_dag

log = logging.getLogger(__name__)


def build_all(directory: Path | None = None) -> dict[str, DAG]:
    """The governance and fine-tune DAGs of every valid contract and the watchdog over them; an
    invalid contract is logged with its file and key, and the others still get their DAGs."""
    directory = directory or contracts_dir()
    dags: dict[str, DAG] = {}
    contracts = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            contract = load_contract(path)
        except ContractError as exc:
            log.error("Skipping invalid dataset contract: %s", exc)
            continue
        contracts.append(contract)
        dags[contract.dag_id] = build_governance_dag(contract)
        dags[contract.finetune_dag_id] = build_finetune_dag(contract)
        dags[contract.reconcile_dag_id] = build_reconcile_dag(contract)
    if contracts:
        dags[WATCHDOG_DAG_ID] = build_watchdog_dag(contracts)
    return dags

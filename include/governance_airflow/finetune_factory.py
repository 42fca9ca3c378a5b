"""Builds the fine-tune DAG of one dataset contract: scheduled on its curated Asset.

prepare (snapshot + parent MLflow run) -> plan (the trial grid, or the Bayesian search's study)
-> train (one mapped task per trial, on GPU workers; at most ``parallel_trials`` at once) ->
register (test evaluation, the study's artifacts, registry, champion gate). Only wiring lives
here; the tasks call ``governance_airflow.finetune_runtime``, which imports the core lazily.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, get_current_context, task
from kubernetes.client import models as k8s

from governance.contracts import Contract
from governance_airflow.factory import contract_dag_arguments, curated_asset
from governance_airflow.finetune_runtime import run_step
from governance_airflow.params import finetune_params

GPU_POOL = "gpu"
GPU_QUEUE = "gpu"
GPU_RESOURCE = "nvidia.com/gpu"
TRAINING_TIMEOUT = dt.timedelta(hours=6)


def gpu_executor_config(devices: int = 1) -> dict[str, Any]:
    """The Kubernetes executor's pod override: ``devices`` GPUs for the task container (named
    base), so a DDP trial's processes each find one."""
    gpu = {GPU_RESOURCE: str(devices)}
    container = k8s.V1Container(
        name="base", resources=k8s.V1ResourceRequirements(requests=gpu, limits=gpu)
    )
    return {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[container]))}


def build_finetune_dag(contract: Contract) -> DAG:
    with DAG(
        dag_id=contract.finetune_dag_id,
        description=f"Fine-tune a classifier on each published version of {contract.name}",
        schedule=[curated_asset(contract)],
        max_active_runs=1,
        params=finetune_params(contract),
        doc_md=__doc__,
        **contract_dag_arguments(contract, "finetune"),
    ) as dag:

        @task(multiple_outputs=False)
        def prepare() -> dict[str, Any]:
            return run_step("prepare", contract, get_current_context())

        @task
        def plan() -> list[dict[str, Any]]:
            return run_step("plan", contract, get_current_context())

        # A trial on several devices takes as many of the gpu pool's slots (one per GPU).
        @task(
            pool=GPU_POOL,
            pool_slots=contract.finetune.devices,
            queue=GPU_QUEUE,
            executor_config=gpu_executor_config(contract.finetune.devices),
            execution_timeout=TRAINING_TIMEOUT,
            max_active_tis_per_dagrun=contract.finetune.parallel_trials,
            multiple_outputs=False,
        )
        def train(trial: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
            return run_step("train", contract, get_current_context(), trial=trial, parent=parent)

        @task(multiple_outputs=False)
        def register(results: list[dict[str, Any]], parent: dict[str, Any]) -> dict[str, Any]:
            # Indexing up to len() reads exactly the mapped results (iterating probes one more).
            finished = [results[index] for index in range(len(results))]
            return run_step(
                "register", contract, get_current_context(), results=finished, parent=parent
            )

        parent = prepare()
        trials = plan()
        parent >> trials
        results = train.partial(parent=parent).expand(trial=trials)
        # @task's typing wants the resolved values; Airflow resolves these XComArgs at run time
        register(results, parent)  # type: ignore[arg-type]
    return dag

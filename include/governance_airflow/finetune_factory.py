"""Builds the fine-tune DAG of one dataset contract: scheduled on its curated Asset.

prepare (snapshot + parent MLflow run) -> plan (the trial grid) -> train (one mapped task per
trial, on GPU workers) -> register (test evaluation, registry, champion gate). Only wiring lives
here; the tasks call ``governance_airflow.finetune_runtime``, which imports the core lazily.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from kubernetes.client import models as k8s

from governance.contracts import Contract
from governance_airflow.deadlines import deadline_for
from governance_airflow.factory import (
    DAY_PATTERN,
    curated_asset,
    optional_override,
    task_defaults,
)
from governance_airflow.finetune_runtime import run_step

GPU_POOL = "gpu"
GPU_QUEUE = "gpu"
GPU_RESOURCE = "nvidia.com/gpu"
TRAINING_TIMEOUT = dt.timedelta(hours=6)


def gpu_executor_config() -> dict[str, Any]:
    """The Kubernetes executor's pod override: one GPU for the task container (named base)."""
    gpu = {GPU_RESOURCE: "1"}
    container = k8s.V1Container(
        name="base", resources=k8s.V1ResourceRequirements(requests=gpu, limits=gpu)
    )
    return {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[container]))}


def finetune_params(contract: Contract) -> dict[str, Param]:
    """The trigger form; empty fields take the contract's fine-tune defaults."""
    spec = contract.finetune
    return {
        "version": Param(
            None,
            type=["null", "string"],
            pattern=DAY_PATTERN,
            format="date",
            title="Dataset version",
            description="YYYY-MM-DD; empty: the version that triggered the run, else the latest.",
        ),
        "epochs": optional_override("Epochs", spec.epochs, "integer", minimum=1, maximum=100),
        "learning_rate": optional_override(
            "Learning rate", spec.learning_rate, "number", exclusiveMinimum=0, maximum=1
        ),
        "batch_size": optional_override(
            "Batch size", spec.batch_size, "integer", minimum=1, maximum=1024
        ),
        "max_seq_length": optional_override(
            "Max sequence length", spec.max_seq_length, "integer", minimum=8, maximum=512
        ),
        "trials": optional_override(
            "Number of trials", spec.trials, "integer", minimum=1, maximum=7
        ),
        "seed": optional_override("Seed", spec.seed, "integer", minimum=0),
        "accelerator": Param(
            "auto",
            type="string",
            enum=["auto", "cpu", "gpu"],
            title="Accelerator",
            description="auto: a GPU (bf16) when the worker has one, else the CPU (fp32).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Train and evaluate, but register and promote nothing.",
        ),
    }


def build_finetune_dag(contract: Contract) -> DAG:
    with DAG(
        dag_id=contract.finetune_dag_id,
        description=f"Fine-tune a classifier on each published version of {contract.name}",
        schedule=[curated_asset(contract)],
        start_date=dt.datetime.fromisoformat(contract.start_date).replace(tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        default_args=task_defaults(contract.owner),
        params=finetune_params(contract),
        deadline=deadline_for(contract, "finetune"),
        tags=["finetune", contract.name, *contract.tags],
        doc_md=__doc__,
    ) as dag:

        @task(multiple_outputs=False)
        def prepare() -> dict[str, Any]:
            return run_step("prepare", contract, get_current_context())

        @task
        def plan() -> list[dict[str, Any]]:
            return run_step("plan", contract, get_current_context())

        @task(
            pool=GPU_POOL,
            queue=GPU_QUEUE,
            executor_config=gpu_executor_config(),
            execution_timeout=TRAINING_TIMEOUT,
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

"""Every shipped DAG imports cleanly, is wired for unattended runs, and parses cheaply."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.contracts import load_contracts

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ["pandas", "numpy", "pandera", "sklearn", "torch", "pytorch_lightning", "mlflow"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_governance_finetune_and_reconcile_dags_per_contract(dagbag) -> None:
    contracts = load_contracts()
    assert contracts, "no contract shipped"
    expected = {
        dag_id for c in contracts for dag_id in (c.dag_id, c.finetune_dag_id, c.reconcile_dag_id)
    }
    assert expected | {"governance_watchdog"} == set(dagbag.dag_ids)


def test_reconcile_dags_follow_each_publication_and_rerun_the_governance_dag(dagbag) -> None:
    for contract in load_contracts():
        dag = dagbag.dags[contract.reconcile_dag_id]
        (asset,) = dagbag.dags[contract.dag_id].get_task("publish").outlets
        assert list(dag.timetable.asset_condition.objects) == [asset]
        rerun = dag.get_task("rerun_day")
        assert rerun.partial_kwargs["trigger_dag_id"] == contract.dag_id
        assert rerun.partial_kwargs["skip_when_already_exists"] is True


def test_finetune_dags_run_after_each_publication_of_their_dataset(dagbag) -> None:
    for contract in load_contracts():
        dag = dagbag.dags[contract.finetune_dag_id]
        publish = dagbag.dags[contract.dag_id].get_task("publish")
        (asset,) = publish.outlets
        assert list(dag.timetable.asset_condition.objects) == [asset]
        assert {"version", "epochs", "learning_rate", "trials", "dry_run"} <= set(dag.params)


def test_training_tasks_are_routed_to_gpu_workers(dagbag) -> None:
    for contract in load_contracts():
        dag = dagbag.dags[contract.finetune_dag_id]
        train = dag.get_task("train")
        assert (train.pool, train.queue) == ("gpu", "gpu")
        # one pool slot and one GPU of the pod per device a trial trains on
        assert train.pool_slots == contract.finetune.devices
        (container,) = train.executor_config["pod_override"].spec.containers
        assert container.name == "base"
        assert container.resources.limits == {"nvidia.com/gpu": str(contract.finetune.devices)}
        others = [t for t in dag.tasks if t.task_id != "train"]
        assert all(t.pool != "gpu" and t.queue != "gpu" for t in others)


def test_every_task_retries_with_backoff_and_a_timeout(dagbag) -> None:
    for dag in dagbag.dags.values():
        assert dag.owner and dag.owner != "airflow", dag.dag_id
        assert dag.tags, dag.dag_id
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.retries >= 2, where
            assert task.retry_exponential_backoff > 1, where
            assert task.max_retry_delay is not None, where
            assert task.execution_timeout is not None, where


def test_governance_tasks_in_order(dagbag) -> None:
    from governance.stages import STAGES

    dag = dagbag.dags["govern_sms_spam"]
    # The stage table's tasks in its order, the history sensor before the first stage that
    # needs every earlier day settled.
    first_settled = next(i for i, s in enumerate(STAGES) if s.needs_settled_history)
    order = [
        "wait_for_partition",
        *(s.task_id for s in STAGES[:first_settled]),
        "wait_for_history",
        *(s.task_id for s in STAGES[first_settled:]),
    ]
    assert order[:5] == [
        "wait_for_partition",
        "ingest_validate",
        "scan_privacy",
        "wait_for_history",
        "deduplicate",
    ]
    assert len(dag.tasks) == len(order)
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("wait_for_partition").mode == "reschedule"
    assert dag.get_task("wait_for_history").mode == "reschedule"
    outlets = dag.get_task("publish").outlets
    assert [a.name for a in outlets] == ["curated_sms_spam"]


def test_parsing_dags_imports_no_heavy_library() -> None:
    script = (
        "import json, runpy, sys\n"
        f"sys.path[:0] = [{str(PROJECT_ROOT / 'plugins')!r}, {str(PROJECT_ROOT / 'dags')!r}]\n"
        "for path in sys.argv[1:]:\n"
        "    runpy.run_path(path)\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    dag_files = [str(p) for p in sorted((PROJECT_ROOT / "dags").glob("*.py"))]
    out = subprocess.run(
        [sys.executable, "-c", script, *dag_files], check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_an_invalid_contract_is_skipped_with_its_file_and_key_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from governance_airflow.catalog import build_all

    good = (PROJECT_ROOT / "include" / "contracts" / "sms_spam.yaml").read_text()
    (tmp_path / "sms_spam.yaml").write_text(good)
    (tmp_path / "broken.yaml").write_text(
        good.replace("name: sms_spam", "name: broken").replace("train: 0.8", "train: 0.9")
    )
    dags = build_all(tmp_path)
    assert list(dags) == [
        "govern_sms_spam",
        "finetune_sms_spam",
        "reconcile_sms_spam",
        "governance_watchdog",
    ]
    assert "broken.yaml" in caplog.text and "split" in caplog.text

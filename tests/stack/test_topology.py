"""Nights run by the scheduler on Celery workers, the fine-tune started by the Asset on the gpu
worker, lineage on the MLflow server: the production topology end to end."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from governance.contracts import load_contract
from governance.errors import GateFailedError
from governance.history import Ledger, verify
from governance.pipeline import DayRun, run_day
from tests.integration.helpers import data_file_digests, version
from tests.stack.conftest import (
    BACKFILL_DAYS,
    DATASET,
    FINETUNE,
    GOVERN,
    NEXT_DAY,
    START,
    RunningStack,
    run_seconds,
)

pytestmark = pytest.mark.stack


def contract(stack: RunningStack):
    folder = stack.stack.airflow_env()["GOVERNANCE_CONTRACTS_DIR"]
    return load_contract(Path(folder) / f"{DATASET}.yaml")


def sequential_reference(stack: RunningStack, target: Path) -> dict[str, dict[str, str]]:
    """Each backfilled day run to the end before the next, in this process."""
    shutil.copytree(stack.data_root / "landing", target / "landing")
    for day in BACKFILL_DAYS:
        with contextlib.suppress(GateFailedError):
            run_day(DayRun(contract(stack), day, root=target, run_id=f"sequential-{day}"))
    ledger = Ledger(target, DATASET, START)
    return {day: data_file_digests(version(target, DATASET, day)) for day in ledger.records()}


def overlapping(runs: list[dict]) -> int:
    """The most runs that were running at the same moment."""
    events = []
    for run in runs:
        events += [(run["start_date"], 1), (run["end_date"], -1)]
    most = current = 0
    for _, change in sorted(events):
        current += change
        most = max(most, current)
    return most


def test_a_concurrent_backfill_gives_the_sequential_data(backfilled, tmp_path: Path) -> None:
    stack, runs = backfilled
    assert {run["state"] for run in runs} == {"success"}, [
        (run["logical_date"], run["state"]) for run in runs
    ]
    assert overlapping(runs) >= 2, "the backfill ran its days one at a time"
    expected = sequential_reference(stack, tmp_path / "sequential")
    assert sorted(expected) == BACKFILL_DAYS, "the sequential run refused a day"
    for day in BACKFILL_DAYS:
        assert data_file_digests(version(stack.data_root, DATASET, day)) == expected[day], day
    assert verify(Ledger(stack.data_root, DATASET, START)) == []


def test_tasks_run_on_the_default_queue_worker(backfilled) -> None:
    stack, runs = backfilled
    for ti in stack.api.task_instances(GOVERN, runs[0]["dag_run_id"]):
        assert (ti["queue"], ti["hostname"]) == ("default", "airflow-worker"), ti["task_id"]


def test_a_publication_starts_the_finetune_on_the_gpu_worker(backfilled, figures: dict) -> None:
    from mlflow import MlflowClient

    stack, _ = backfilled
    api = stack.api
    api.unpause(FINETUNE)
    night = api.trigger(GOVERN, f"{NEXT_DAY}T00:00:00Z")
    (manual,) = api.wait_for(
        f"{GOVERN} {NEXT_DAY}",
        lambda: api.finished_runs(GOVERN, lambda run: run["dag_run_id"] == night, 1),
        timeout=10 * 60,
    )
    assert manual["state"] == "success"
    # Unpausing created the scheduled run of the latest night, whose landing folder is empty:
    # it waits for its partition, and the manual run above did not wait behind it.
    waiting = [run for run in api.runs(GOVERN) if run["run_type"] == "scheduled"]
    assert waiting and all(run["state"] in ("queued", "running") for run in waiting), waiting
    finetunes = api.wait_for(
        f"an asset-triggered {FINETUNE} run on {NEXT_DAY}",
        lambda: [
            run
            for run in api.runs(FINETUNE)
            if run["run_type"] == "asset_triggered"
            and run["state"] in ("success", "failed")
            and NEXT_DAY in str(run.get("conf")) + str(task_version(api, run))
        ],
        timeout=20 * 60,
    )
    run = finetunes[-1]
    assert run["state"] == "success"
    figures["manual_night_s"] = run_seconds(manual)
    figures["finetune_s"] = run_seconds(run)
    instances = api.task_instances(FINETUNE, run["dag_run_id"])
    trains = [ti for ti in instances if ti["task_id"] == "train"]
    assert trains, [ti["task_id"] for ti in instances]
    for ti in trains:
        assert (ti["queue"], ti["hostname"], ti["pool"]) == ("gpu", "airflow-worker-gpu", "gpu")
    for ti in instances:
        if ti["task_id"] != "train":
            assert ti["hostname"] == "airflow-worker", ti["task_id"]
    register = next(ti for ti in instances if ti["task_id"] == "register")
    assert register["try_number"] == 1, "register needed a retry"

    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name(DATASET)
    # Artifacts go through the server (no worker shares its disk), and the UI opens the
    # experiment on its training runs.
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    logged = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`airflow.run_id` = '{run['dag_run_id']}'",
    )
    assert logged, "the fine-tune logged nothing on the MLflow server"
    assert {r.data.tags["dataset.version"] for r in logged} == {NEXT_DAY}
    assert {r.data.tags["airflow.dag_id"] for r in logged} == {FINETUNE}
    trial_runs = [r for r in logged if r.data.tags.get("governance.role") == "trial"]
    assert len(trial_runs) == len(trains), "one MLflow run per trial"
    # Every trial asked the run's study in the Optuna database for its settings and told it
    # the outcome; each MLflow trial run carries the settings its Optuna trial was given.
    told = {t.number: t for t in stack.study_trials(run["dag_run_id"])}
    assert sorted(t.user_attrs["map_index"] for t in told.values()) == sorted(
        ti["map_index"] for ti in trains
    )
    assert {t.state.name for t in told.values()} <= {"COMPLETE", "PRUNED"}
    for trial_run in trial_runs:
        params = told[int(trial_run.data.tags["optuna.trial_number"])].params
        assert float(trial_run.data.params["learning_rate"]) == pytest.approx(
            params["learning_rate"]
        )
    champion = client.get_model_version_by_alias(f"{DATASET}-classifier", "champion")
    assert client.get_run(champion.run_id).data.tags["dataset.version"] in (
        *BACKFILL_DAYS,
        NEXT_DAY,
    )


def task_version(api, run: dict) -> str:
    """The version a fine-tune run trained on (its prepare task's return value)."""
    if run["state"] != "success":
        return ""
    run_path = f"/dags/{FINETUNE}/dagRuns/{run['dag_run_id']}"
    path = f"{run_path}/taskInstances/prepare/xcomEntries/return_value"
    try:
        return str(api.call("GET", path)["value"])
    except AssertionError:
        return ""

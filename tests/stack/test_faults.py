"""Faults on the production topology: a worker killed mid-task, the MLflow server down, the
scheduler restarted. Each night and fine-tune still ends as an undisturbed one would."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from governance.history import Ledger, verify
from governance.pipeline import DayRun, run_day
from tests.integration.helpers import data_file_digests, version
from tests.stack.api import RUN_ENDED, TASK_ENDED, AirflowApi
from tests.stack.conftest import (
    DATASET,
    FAULT_DAYS,
    FINETUNE,
    GOVERN,
    START,
    RunningStack,
    run_seconds,
    utc,
)
from tests.stack.test_topology import contract

pytestmark = pytest.mark.stack

RECOVERY_SECONDS = 120
MLFLOW_DOWN_SECONDS = 60


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def tries(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    """Every try of a task (each mapped index), oldest first."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
    found = []
    for ti in api.task_instances(dag_id, run_id):
        if ti["task_id"] != task_id:
            continue
        index = ti.get("map_index", -1)
        suffix = f"/{index}" if index is not None and index >= 0 else ""
        answer = api.call("GET", f"{path}{suffix}/tries")
        found += answer["task_instances"]
    return sorted(found, key=lambda t: (t.get("map_index", -1), t["try_number"]))


def running(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> dict | None:
    """The task instance once it runs; fails at once, naming every task's state, when the task
    or its run ended without it being seen running (a wait would otherwise last its timeout)."""
    instances = api.task_instances(dag_id, run_id)
    for ti in instances:
        if ti["task_id"] == task_id and ti["state"] == "running":
            return ti
    ended = [ti for ti in instances if ti["task_id"] == task_id and ti["state"] in TASK_ENDED]
    run = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    if ended or run["state"] in RUN_ENDED:
        states = {ti["task_id"]: ti["state"] for ti in instances}
        raise AssertionError(f"{dag_id} {run_id} is {run['state']} before {task_id} ran: {states}")
    return None


def kill_worker_while(
    stack: RunningStack, service: str, dag_id: str, run_id: str, task_id: str
) -> tuple[dt.datetime, int]:
    """SIGKILL the worker's whole process group as soon as ``task_id`` is seen running on it
    (the task process's start-up and the task itself lie ahead), then start it again (as systemd
    or Kubernetes would); returns when it was killed and the map index of the task instance that
    was running. assert_retried_within checks that the killed try did not succeed."""
    api = stack.api
    victim = api.wait_for(
        f"{dag_id} {task_id} running",
        lambda: running(api, dag_id, run_id, task_id),
        timeout=15 * 60,
        every=0.25,
    )
    killed = now()
    stack.stack.stop(service, sig=signal.SIGKILL, wait=10)
    services = {s.name: s for s in stack.stack.services()}
    stack.stack.start(services[service])
    return killed, victim.get("map_index", -1)


def idle(api: AirflowApi, dag_id: str) -> bool:
    """No run the tests started (backfill, manual, Asset-triggered) is still going. Scheduled
    runs are left out: unpausing created them for days whose partition never lands, and their
    sensors wait for it for hours."""
    return all(
        run["state"] in RUN_ENDED for run in api.runs(dag_id) if run["run_type"] != "scheduled"
    )


def assert_retried_within(
    api: AirflowApi, dag_id: str, run_id: str, task_id: str, killed: tuple[dt.datetime, int]
) -> float:
    """The killed try did not succeed, and the next try started within two minutes; returns
    the seconds from the kill to the retry's start."""
    killed_at, map_index = killed
    attempts = [
        t for t in tries(api, dag_id, run_id, task_id) if t.get("map_index", -1) == map_index
    ]
    first = [t for t in attempts if t["try_number"] == 1]
    assert first and all(t["state"] != "success" for t in first), f"not killed mid-task: {first}"
    later = [t for t in attempts if t["try_number"] > 1 and t.get("start_date")]
    assert later, f"{task_id} was never retried: {attempts}"
    delay = (utc(later[0]["start_date"]) - killed_at).total_seconds()
    assert delay <= RECOVERY_SECONDS, f"{task_id} retried {delay:.0f} s after the kill"
    return round(delay, 1)


def wait_finished(api: AirflowApi, dag_id: str, run_id: str, timeout: float = 20 * 60) -> dict:
    (run,) = api.wait_for(
        f"{dag_id} {run_id}",
        lambda: api.finished_runs(dag_id, lambda r: r["dag_run_id"] == run_id, 1),
        timeout=timeout,
    )
    return run


def mlflow_down_for(stack: RunningStack, seconds: float) -> threading.Thread:
    """Stop the MLflow server now and start it again after ``seconds``, in the background."""
    stack.stack.stop("mlflow")

    def restart() -> None:
        time.sleep(seconds)
        services = {s.name: s for s in stack.stack.services()}
        stack.stack.start(services["mlflow"])

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_deduplicate_retries_and_publishes_the_same_data(
    backfilled, figures: dict, tmp_path: Path
) -> None:
    stack, _ = backfilled
    api = stack.api
    day = FAULT_DAYS[0]
    run_id = api.trigger(GOVERN, f"{day}T00:00:00Z")
    killed = kill_worker_while(stack, "airflow-worker", GOVERN, run_id, "deduplicate")
    night = wait_finished(api, GOVERN, run_id)
    assert night["state"] == "success"
    figures["worker_killed_mid_deduplicate"] = {
        "retry_started_after_kill_s": assert_retried_within(
            api, GOVERN, run_id, "deduplicate", killed
        ),
        "night_s": run_seconds(night),
    }

    # An undisturbed run of the same day on the same history gives the same bytes.
    copy = tmp_path / "undisturbed"
    shutil.copytree(stack.data_root, copy, ignore=shutil.ignore_patterns("checkpoints"))
    run_day(DayRun(contract(stack), day, root=copy, run_id="undisturbed"))
    assert data_file_digests(version(copy, DATASET, day)) == data_file_digests(
        version(stack.data_root, DATASET, day)
    )
    assert verify(Ledger(stack.data_root, DATASET, START)) == []


def test_a_finetune_survives_a_killed_gpu_worker_and_mlflow_down_twice(
    backfilled, figures: dict
) -> None:
    """A fine-tune of the fault day triggered by hand: MLflow is down while it prepares, the gpu
    worker dies mid-train, MLflow is down again while it registers."""
    stack, _ = backfilled
    api = stack.api
    # No night may publish (and start a fine-tune of its own) while this one is under test.
    api.wait_for("the nights to finish", lambda: idle(api, GOVERN), timeout=20 * 60)
    api.wait_for(
        "the publications' fine-tune runs to be created",
        lambda: api.queued_asset_events(FINETUNE) == 0,
        timeout=5 * 60,
    )
    api.wait_for(
        "the fine-tunes the publications started", lambda: idle(api, FINETUNE), timeout=20 * 60
    )
    run_id = api.trigger(FINETUNE, None, {"version": FAULT_DAYS[0]})
    mlflow_down_for(stack, MLFLOW_DOWN_SECONDS).join()

    killed = kill_worker_while(stack, "airflow-worker-gpu", FINETUNE, run_id, "train")
    api.wait_for(
        "register queued or running",
        lambda: any(
            ti["task_id"] == "register" and ti["state"] in ("scheduled", "queued", "running")
            for ti in api.task_instances(FINETUNE, run_id)
        ),
        timeout=20 * 60,
        every=0.5,
    )
    mlflow_down_for(stack, MLFLOW_DOWN_SECONDS).join()
    tune = wait_finished(api, FINETUNE, run_id)
    assert tune["state"] == "success"
    figures["finetune_with_faults"] = {
        "train_retry_started_after_kill_s": assert_retried_within(
            api, FINETUNE, run_id, "train", killed
        ),
        "mlflow_down_s": [MLFLOW_DOWN_SECONDS, MLFLOW_DOWN_SECONDS],
        "finetune_s": run_seconds(tune),
    }

    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    experiment = client.get_experiment_by_name(DATASET)
    logged = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`airflow.run_id` = '{run_id}'"
    )
    parents = [r for r in logged if r.data.tags.get("governance.role") == "parent"]
    trials = [r for r in logged if r.data.tags.get("governance.role") == "trial"]
    train_count = len({t.get("map_index") for t in tries(api, FINETUNE, run_id, "train")})
    assert len(parents) == 1, "a retried prepare opened a second parent run"
    assert len(trials) == train_count, "one MLflow run per trial, retries included"
    told = stack.study_trials(run_id)
    assert len(told) == train_count, "a retried trial asked the study for a new one"
    assert {t.state.name for t in told} <= {"COMPLETE", "PRUNED"}
    assert sorted(int(t.data.tags["optuna.trial_number"]) for t in trials) == sorted(
        t.number for t in told
    )
    versions = [
        v
        for v in client.search_model_versions(f"name = '{DATASET}-classifier'")
        if v.run_id in {r.info.run_id for r in logged}
    ]
    assert len(versions) == 1, "a retried register registered twice"


def test_a_scheduler_restarted_mid_run_lets_the_night_finish(backfilled, figures: dict) -> None:
    stack, _ = backfilled
    api = stack.api
    day = FAULT_DAYS[1]
    run_id = api.trigger(GOVERN, f"{day}T00:00:00Z")
    api.wait_for(
        "ingest_validate running",
        lambda: running(api, GOVERN, run_id, "ingest_validate"),
        timeout=10 * 60,
        every=0.5,
    )
    stack.stack.stop("airflow-scheduler")
    services = {s.name: s for s in stack.stack.services()}
    stack.stack.start(services["airflow-scheduler"])
    night = wait_finished(api, GOVERN, run_id)
    assert night["state"] == "success"
    figures["scheduler_restarted_mid_night"] = {"night_s": run_seconds(night)}
    assert verify(Ledger(stack.data_root, DATASET, START)) == []

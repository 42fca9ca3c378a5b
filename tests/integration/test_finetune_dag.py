"""The fine-tune DAG end to end through Airflow (dag.test), on a tiny CPU fine-tune, with no
network beyond loopback; then what a reviewer finds in the tracking store."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from pathlib import Path

import pytest

from governance import tracking
from governance.contracts import contracts_dir, load_contract
from governance.finetune import ROLE_TAG
from governance.tracking import lineage, promotion
from tests.conftest import private_mlflow
from tests.integration.helpers import run_days, task_states

pytestmark = pytest.mark.airflow

DAY = "2026-09-01"
TINY = {"search": "grid", "epochs": 1, "batch_size": 8, "max_seq_length": 24, "accelerator": "cpu"}
UNTRAINED = {**TINY, "learning_rate": 1e-9, "trials": 1}
TRAINED = {**TINY, "learning_rate": 3e-4, "epochs": 3, "trials": 2}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="module")
def loopback_only():
    """Any connection beyond this machine fails, as it would on an air-gapped worker."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, loopback_only):
    from governance.demo.feed import generate_feed

    with private_mlflow(tmp_path_factory.mktemp("finetune_dag")) as base:
        data = base / "data"
        generate_feed(data / "landing", data / "truth", dt.date.fromisoformat(DAY), 1, 150, 8)
        run_days("demo_reviews", [DAY])
        yield data


def finetune(conf: dict):
    from governance_airflow.factory import without_deadlines
    from governance_airflow.finetune_factory import build_finetune_dag

    dag = without_deadlines(
        build_finetune_dag(load_contract(contracts_dir() / "demo_reviews.yaml"))
    )
    dag_run = dag.test(run_conf={"version": DAY, **conf})
    assert "success" in str(dag_run.state), task_states(dag_run)
    return dag_run, dag_run.get_task_instance("register").xcom_pull()


@pytest.fixture(scope="module")
def first(root: Path):
    return finetune(UNTRAINED)


def parent_run(client, outcome: dict):
    return client.get_run(outcome["run_id"])


def test_a_run_leaves_its_whole_lineage_in_mlflow(root: Path, first) -> None:
    dag_run, outcome = first
    client = tracking.connect()
    run = parent_run(client, outcome)
    tags = run.data.tags
    assert tags[tracking.TAG_DAG_ID] == "finetune_demo_reviews"
    assert tags[tracking.TAG_DAG_RUN_ID] == dag_run.run_id
    assert tags[tracking.TAG_TASK_ID] == "prepare" and tags[tracking.TAG_TRY_NUMBER] == "1"
    assert tags[tracking.TAG_VERSION] == DAY and tags[tracking.TAG_DATASET] == "demo_reviews"
    snapshot = root / "snapshots" / "demo_reviews" / DAY
    manifest_sha = hashlib.sha256((snapshot / "manifest.json").read_bytes()).hexdigest()
    assert tags[tracking.TAG_MANIFEST_SHA256] == manifest_sha
    assert tags[tracking.TAG_CODE_VERSION]

    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    for split in ("train", "val", "test"):
        digest = hashlib.sha256((snapshot / f"{split}.parquet").read_bytes()).hexdigest()
        found = inputs[f"demo_reviews-{split}@{DAY}"]
        assert found.dataset.digest == digest[: tracking.DIGEST_CHARS]
        assert {t.key: t.value for t in found.tags}["mlflow.data.context"] == split

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, f"governance/{DAY}")}
    assert {f"governance/{DAY}/{name}" for name in ("report.html", "manifest.json")} <= artifacts
    assert any("review_queue" in path for path in artifacts)
    assert "evaluation/confusion_matrix.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "evaluation")
    }
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
    )
    assert len(children) == 1 and children[0].data.tags[ROLE_TAG] == "trial"
    assert children[0].data.tags[tracking.TAG_TASK_ID] == "train"

    name = "demo_reviews-classifier"
    version = client.get_model_version(name, outcome["registered"])
    assert version.run_id == run.info.run_id
    assert promotion.champion(client, name).version == version.version
    lines = "\n".join(lineage.lineage_chain(client, name))
    assert dag_run.run_id in lines and manifest_sha in lines


def test_only_a_challenger_that_beats_the_champion_is_promoted(root, first) -> None:
    client = tracking.connect()
    name = "demo_reviews-classifier"
    _, untrained = first
    trained_run, trained = finetune(TRAINED)
    states = task_states(trained_run)
    assert {k: v[0] for k, v in states.items() if k == "train"} == {"train": "success"}
    assert trained["metrics"]["test_macro_f1"] > untrained["metrics"]["test_macro_f1"] + 0.005
    assert trained["promoted"], trained["reason"]
    assert promotion.champion(client, name).version == int(trained["registered"])

    _, again = finetune(UNTRAINED)
    assert not again["promoted"]
    assert promotion.champion(client, name).version == int(trained["registered"])
    tags = client.get_model_version(name, again["registered"]).tags
    assert tags["promotion"] == "rejected"
    assert "does not beat" in tags["promotion.reason"]


def study_and_children(root: Path, dag_run_id: str, parent_run_id: str) -> tuple[dict, list]:
    """The run's Optuna trials by number, and the parent MLflow run's child runs."""
    import optuna

    study = optuna.load_study(
        study_name=f"finetune_demo_reviews/{dag_run_id}",
        storage=f"sqlite:///{root / 'optuna' / 'studies.db'}",
    )
    client = tracking.connect()
    children = client.search_runs(
        [client.get_run(parent_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
    )
    return {t.number: t for t in study.get_trials()}, children


def test_a_bayesian_search_trains_one_mapped_task_per_trial_of_one_study(root: Path) -> None:

    from governance.finetune.bayesian import NUMBER_TAG, STATE_TAG

    contract = load_contract(contracts_dir() / "demo_reviews.yaml")
    space = contract.finetune.search_space
    conf = {"max_seq_length": 24, "accelerator": "cpu", "search": "bayesian", "trials": 3}
    dag_run, outcome = finetune({**conf, "dry_run": True})
    summary = outcome["search"]
    assert (summary["trials"], summary["failed"]) == (3, 0)
    assert summary["complete"] + summary["pruned"] == 3 and summary["complete"] >= 1

    trials, children = study_and_children(root, dag_run.run_id, outcome["run_id"])
    assert sorted(t.user_attrs["map_index"] for t in trials.values()) == [0, 1, 2]
    assert len(children) == 3
    client = tracking.connect()
    for child in children:
        trial = trials[int(child.data.tags[NUMBER_TAG])]
        assert child.data.tags[STATE_TAG] == trial.state.name.lower()
        assert float(child.data.params["learning_rate"]) == pytest.approx(
            trial.params["learning_rate"]
        )
        assert int(child.data.params["batch_size"]) in space.batch_size
        assert int(child.data.params["max_seq_length"]) == 24, "the form's setting stays"
    best = outcome["best_trial"]["config"]
    assert space.learning_rate.low <= best["learning_rate"] <= space.learning_rate.high
    artifacts = {a.path for a in client.list_artifacts(outcome["run_id"], "search")}
    assert {"search/study.json", "search/optimization_history.png"} <= artifacts
    competition = outcome["ensemble"]  # the demo contract's ensemble_top_k: 2
    assert len(competition["members"]) == 2
    better = competition["test_macro_f1"] > competition["best_single_test_macro_f1"] + 0.005
    assert competition["chosen"] == better
    evaluation = {a.path for a in client.list_artifacts(outcome["run_id"], "evaluation")}
    assert "evaluation/ensemble.json" in evaluation


def test_a_search_trains_each_trial_with_ddp_over_two_processes(root: Path) -> None:
    """devices: 2 on the CPU: every trial trains in two gloo processes; rank 0 alone logs to
    MLflow and reports to the study, and both agree on what it reported."""
    import optuna

    from governance.finetune.bayesian import NUMBER_TAG
    from governance_airflow.factory import without_deadlines
    from governance_airflow.finetune_factory import GPU_RESOURCE, build_finetune_dag

    demo = load_contract(contracts_dir() / "demo_reviews.yaml")
    contract = demo.model_copy(
        update={"finetune": demo.finetune.model_copy(update={"devices": 2, "ensemble_top_k": 1})}
    )
    dag = without_deadlines(build_finetune_dag(contract))
    train = dag.get_task("train")
    assert train.pool_slots == 2
    container = train.executor_config["pod_override"].spec.containers[0]
    assert container.resources.limits[GPU_RESOURCE] == "2"
    conf = {"max_seq_length": 24, "accelerator": "cpu", "search": "bayesian", "trials": 2}
    dag_run = dag.test(run_conf={"version": DAY, "dry_run": True, "strategy": "ddp", **conf})
    assert "success" in str(dag_run.state), task_states(dag_run)
    outcome = dag_run.get_task_instance("register").xcom_pull()
    trials, children = study_and_children(root, dag_run.run_id, outcome["run_id"])
    assert len(trials) == 2 and len(children) == 2
    client = tracking.connect()
    for child in children:
        assert child.data.tags["training.device"] == "2 x cpu (DDP)"
        trial = trials[int(child.data.tags[NUMBER_TAG])]
        logged = [m.value for m in client.get_metric_history(child.info.run_id, "val_macro_f1")]
        assert logged == pytest.approx(list(trial.intermediate_values.values()))
        pruned = trial.state == optuna.trial.TrialState.PRUNED
        assert pruned == bool(trial.user_attrs.get("pruned"))


def test_a_form_cannot_ask_for_more_devices_than_the_contract_reserves(root: Path) -> None:
    from governance.finetune import FinetuneRequest

    contract = load_contract(contracts_dir() / "demo_reviews.yaml")
    with pytest.raises(ValueError, match="devices: 2 is more than the contract's 1"):
        FinetuneRequest.from_contract(contract, devices=2)

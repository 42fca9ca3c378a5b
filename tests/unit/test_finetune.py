"""A fine-tune run step by step against a private MLflow store: lineage, resume, registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from governance import tracking
from governance.contract_finetune import GRID_LEARNING_RATE_FACTORS, SearchSpace
from governance.demo.feed import generate_feed
from governance.errors import InvalidInputError
from governance.finetune import (
    TRIAL_TAG,
    FinetuneRequest,
    RunContext,
    checkpoint_dir,
    evaluate_and_register,
    plan_trials,
    run_trial,
    search,
    search_settings,
    select_best,
    start_parent_run,
    trial_grid,
)
from governance.finetune.bayesian import NUMBER_TAG, STATE_TAG
from governance.pipeline import DayRun, run_day
from tests.conftest import private_mlflow
from tests.contracts import shipped_contract
from tests.unit.test_finetune_training import Interrupt

DAY = "2026-08-01"
CONTRACT = shipped_contract("demo_reviews", DAY)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory):
    with private_mlflow(tmp_path_factory.mktemp("finetune")) as base:
        data = base / "data"
        generate_feed(data / "landing", data / "truth", dt.date.fromisoformat(DAY), 1, 150, 4)
        run_day(DayRun(CONTRACT, DAY, root=data, run_id="nightly"))
        yield data


def request(**changes) -> FinetuneRequest:
    tiny = {
        "version": DAY,
        "search": "grid",
        "epochs": 2,
        "learning_rate": 2e-4,
        "batch_size": 8,
        "max_seq_length": 16,
        "trials": 1,
        "max_train_rows": 40,
        "max_eval_rows": 16,
        "accelerator": "cpu",
    }
    return FinetuneRequest.from_contract(CONTRACT, **{**tiny, **changes})


def context(root: Path, try_number: int = 1) -> RunContext:
    return RunContext("finetune_demo_reviews", "manual__t1", "train", try_number, root)


def test_a_request_holds_the_trial_settings_and_refuses_unknown_names() -> None:
    asked = request(epochs=3, trials=2, seed=None)
    assert (asked.trial.epochs, asked.trial.batch_size, asked.trials) == (3, 8, 2)
    assert asked.trial.seed == CONTRACT.finetune.seed  # None keeps the contract's value
    with pytest.raises(InvalidInputError, match="epoch"):
        request(epoch=3)


def test_the_grid_spreads_the_learning_rate_one_trial_each() -> None:
    grid = trial_grid(request(trials=3, learning_rate=1e-4))
    assert [t["index"] for t in grid] == [0, 1, 2]
    rates = [t["config"]["learning_rate"] for t in grid]
    assert rates == pytest.approx([1e-4 * f for f in GRID_LEARNING_RATE_FACTORS[:3]])
    assert {t["config"]["seed"] for t in grid} == {CONTRACT.finetune.seed}


def test_the_best_trial_wins_on_validation_and_ties_go_to_the_first() -> None:
    results = [{"index": 1, "val_macro_f1": 0.7}, {"index": 0, "val_macro_f1": 0.7}]
    assert select_best(results)["index"] == 0
    assert select_best([*results, {"index": 2, "val_macro_f1": 0.9}])["index"] == 2
    pruned = {"index": 3, "val_macro_f1": 0.95, "state": "pruned"}
    assert select_best([*results, pruned])["index"] == 0, "a pruned trial did not finish"
    assert select_best([pruned])["index"] == 3, "unless every trial was pruned"


def test_a_killed_trial_resumes_in_the_same_mlflow_run_and_the_best_is_registered(
    root: Path,
) -> None:
    asked = request()
    parent = start_parent_run(asked, context(root))
    assert start_parent_run(asked, context(root))["parent_run_id"] == parent["parent_run_id"]
    (trial,) = trial_grid(asked)
    trial["config"]["checkpoint_every_n_steps"] = 3
    with pytest.raises(RuntimeError, match="worker lost"):
        run_trial(trial, parent, "demo_reviews", context(root), callbacks=[Interrupt(4)])
    assert (checkpoint_dir(context(root), "demo_reviews", 0) / "last.ckpt").exists()

    result = run_trial(trial, parent, "demo_reviews", context(root, try_number=2))
    assert result["resumed_from_step"] == 3

    client = tracking.connect()
    children = client.search_runs(
        [client.get_run(parent["parent_run_id"]).info.experiment_id],
        filter_string=f"tags.`{TRIAL_TAG}` = '0'",
    )
    assert [run.info.run_id for run in children] == [result["run_id"]]
    child = children[0]
    assert child.data.tags["mlflow.parentRunId"] == parent["parent_run_id"]
    assert child.data.tags[tracking.TAG_TRY_NUMBER] == "2"
    assert child.data.metrics["resumed_from_step"] == 3

    outcome = evaluate_and_register(select_best([result]), parent, asked, context(root))
    assert outcome["registered"] == "1" and outcome["promoted"]
    assert outcome["champion"] == "1"
    run = client.get_run(parent["parent_run_id"])
    snapshot = Path(parent["snapshot"])
    digests = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
    for split in ("train", "val", "test"):
        digest = hashlib.sha256((snapshot / f"{split}.parquet").read_bytes()).hexdigest()
        assert digests[f"demo_reviews-{split}@{DAY}"] == digest[: tracking.DIGEST_CHARS]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert 0 <= run.data.metrics["test_macro_f1"] <= 1


def test_a_dry_run_registers_nothing(root: Path) -> None:
    asked = request(dry_run=True, epochs=1)
    where = replace(context(root), run_id="manual__dry")
    parent = start_parent_run(asked, where)
    (trial,) = trial_grid(asked)
    result = run_trial(trial, parent, "demo_reviews", where)
    outcome = evaluate_and_register(result, parent, asked, where)
    assert outcome["registered"] is None and outcome["reason"] == "dry run"
    assert "test_macro_f1" in outcome["metrics"]


# A space whose every trial trains two epochs on the tiny version, so the pruner has an epoch to
# stop after.
TINY_SPACE = {
    "learning_rate": {"low": 1e-4, "high": 5e-4, "log": True},
    "batch_size": [8],
    "weight_decay": {"low": 0.0, "high": 0.05},
    "warmup_ratio": {"low": 0.0, "high": 0.1},
    "epochs": {"low": 2, "high": 2},
}


def bayesian(run_id: str, root: Path, **changes) -> tuple[FinetuneRequest, RunContext]:
    asked = request(search="bayesian", search_space=TINY_SPACE, dry_run=True, **changes)
    return asked, replace(context(root), run_id=run_id)


def trial_of(asked: FinetuneRequest, where: RunContext, index: int) -> optuna.trial.FrozenTrial:
    study = search.load_study(search_settings(asked, where))
    (found,) = [t for t in study.get_trials() if t.user_attrs.get(search.MAP_INDEX_ATTR) == index]
    return found


def test_a_killed_bayesian_trial_resumes_its_optuna_trial_and_the_study_is_logged(
    root: Path,
) -> None:
    asked, where = bayesian("manual__bayes", root, trials=2, ensemble_top_k=2)
    parent = start_parent_run(asked, where)
    where = replace(where, study_storage=search.storage_url(root / "elsewhere", None))
    trials = plan_trials(asked, where)
    assert [t["index"] for t in trials] == [0, 1]
    assert "elsewhere" not in json.dumps(trials), "the storage URL stays out of the XCom"
    first = {**trials[0], "config": {**trials[0]["config"], "checkpoint_every_n_steps": 3}}
    with pytest.raises(RuntimeError, match="worker lost"):
        run_trial(first, parent, "demo_reviews", where, callbacks=[Interrupt(4)])
    asked_trial = trial_of(asked, where, 0)
    assert asked_trial.state == optuna.trial.TrialState.RUNNING

    result = run_trial(first, parent, "demo_reviews", replace(where, try_number=2))
    assert (result["resumed_from_step"], result["number"], result["state"]) == (3, 0, "complete")
    told = trial_of(asked, where, 0)
    assert told.number == asked_trial.number and told.params == asked_trial.params
    assert told.state == optuna.trial.TrialState.COMPLETE
    assert told.value == pytest.approx(result["val_macro_f1"])
    assert result["config"]["learning_rate"] == asked_trial.params["learning_rate"]
    assert result["config"]["max_seq_length"] == asked.trial.max_seq_length

    client = tracking.connect()
    experiment = client.get_run(parent["parent_run_id"]).info.experiment_id
    children = client.search_runs(
        [experiment],
        filter_string=f"tags.`{TRIAL_TAG}` = '0' and tags.`airflow.run_id` = 'manual__bayes'",
    )
    assert [run.info.run_id for run in children] == [result["run_id"]]
    child = children[0].data
    assert (child.tags[NUMBER_TAG], child.tags[STATE_TAG]) == ("0", "complete")
    assert float(child.params["learning_rate"]) == pytest.approx(told.params["learning_rate"])
    assert float(child.params["weight_decay"]) == pytest.approx(told.params["weight_decay"])

    second = run_trial(trials[1], parent, "demo_reviews", where)
    assert second["number"] == 1 and second["config"] != result["config"]
    results = [result, second]
    outcome = evaluate_and_register(select_best(results), parent, asked, where, results)
    assert outcome["search"]["trials"] == 2
    # the first two trials are the sampler's random start, which the pruner spares
    competition = outcome["ensemble"]
    assert sorted(m["index"] for m in competition["members"]) == [0, 1]
    assert competition["members"][0]["index"] == select_best(results)["index"]
    better = competition["test_macro_f1"] > competition["best_single_test_macro_f1"] + 0.005
    assert competition["chosen"] == better
    parent_run = client.get_run(parent["parent_run_id"]).data
    assert parent_run.metrics["ensemble_test_macro_f1"] == competition["test_macro_f1"]
    registered = (
        competition["test_macro_f1"] if better else competition["best_single_test_macro_f1"]
    )
    assert outcome["metrics"]["test_macro_f1"] == pytest.approx(registered)
    members = json.loads(parent_run.tags[tracking.TAG_MODEL_MEMBERS])
    assert len(members) == (2 if better else 1)
    assert outcome["search"]["complete"] + outcome["search"]["pruned"] == 2
    logged = client.download_artifacts(parent["parent_run_id"], "search")
    saved = (Path(logged) / "study.json").read_text()
    assert '"study": "finetune_demo_reviews/manual__bayes"' in saved
    assert (Path(logged) / "optimization_history.png").read_bytes().startswith(b"\x89PNG")
    metrics = client.get_run(parent["parent_run_id"]).data.metrics
    assert metrics["search_trials_trials"] == 2


def test_a_trial_behind_the_median_is_pruned_and_its_retry_trains_nothing(root: Path) -> None:
    asked, where = bayesian("manual__prune", root, trials=1, startup_trials=1)
    (trial,) = plan_trials(asked, where)
    study = search.load_study(search_settings(asked, where))
    # An earlier trial that scored perfectly after each epoch: any real trial is behind it.
    perfect = {"learning_rate": 1e-4, "batch_size": 8, "weight_decay": 0.0, "warmup_ratio": 0.0}
    study.add_trial(
        optuna.trial.create_trial(
            params={**perfect, "epochs": 2},
            distributions=search.distributions(SearchSpace.model_validate(TINY_SPACE)),
            value=1.0,
            intermediate_values={0: 1.0, 1: 1.0},
        )
    )
    parent = start_parent_run(asked, where)
    pruned = run_trial(trial, parent, "demo_reviews", where)
    assert pruned["state"] == "pruned"
    frozen = trial_of(asked, where, 0)
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert list(frozen.intermediate_values) == [0], "stopped after the first of two epochs"
    client = tracking.connect()
    first = client.get_run(pruned["run_id"]).data
    assert (first.metrics["epochs_run"], first.tags[STATE_TAG]) == (1, "pruned")

    again = run_trial(trial, parent, "demo_reviews", replace(where, try_number=2))
    assert (again["state"], again["run_id"], again["number"]) == ("pruned", pruned["run_id"], 1)
    assert again["resumed_from_step"] == first.metrics["global_step"]
    assert (
        client.get_run(pruned["run_id"]).data.metrics["global_step"] == first.metrics["global_step"]
    )
    assert len(search.load_study(search_settings(asked, where)).get_trials()) == 2

"""A fine-tune run step by step against a private MLflow store: lineage, resume, registry."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from governance import tracking
from governance.demo.feed import generate_feed
from governance.errors import InvalidInputError
from governance.finetune import (
    LR_FACTORS,
    TRIAL_TAG,
    FinetuneRequest,
    RunContext,
    checkpoint_dir,
    evaluate_and_register,
    run_trial,
    select_best,
    start_parent_run,
    trial_grid,
)
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
    assert rates == pytest.approx([1e-4 * f for f in LR_FACTORS[:3]])
    assert {t["config"]["seed"] for t in grid} == {CONTRACT.finetune.seed}


def test_the_best_trial_wins_on_validation_and_ties_go_to_the_first() -> None:
    results = [{"index": 1, "val_macro_f1": 0.7}, {"index": 0, "val_macro_f1": 0.7}]
    assert select_best(results)["index"] == 0
    assert select_best([*results, {"index": 2, "val_macro_f1": 0.9}])["index"] == 2


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

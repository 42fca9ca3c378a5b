"""Training with Lightning's DDP over two CPU processes (gloo): the sharding of batches and
validation rows, the scores reduced over the processes, and a resume after a kill."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from governance.contract_finetune import FinetuneSpec
from governance.finetune import search
from governance.finetune.data import VAL, EpochShuffleSampler, VersionDataModule
from governance.finetune.evaluation import evaluate_predictions
from governance.finetune.training import (
    TrialConfig,
    TrialResult,
    load_trained,
    predict_probabilities,
    train_trial,
)
from tests.unit.test_finetune_data import write_version
from tests.unit.test_finetune_search import settings
from tests.unit.test_finetune_training import (
    CONFIG,
    N_TRAIN,
    assert_a_kill_resumes_to,
    toy_version,
)

DDP = replace(CONFIG, devices=2)


def per_process_batches(n_rows: int, world: int, batch: int, skip: int = 0) -> list[set[int]]:
    """Step k's rows of all processes together."""
    shares = []
    for rank in range(world):
        sampler = EpochShuffleSampler(n_rows, seed=5, rank=rank, world_size=world)
        sampler.set_epoch(1)
        sampler.resume_at(1, skip)
        rows = list(sampler)
        shares.append([rows[i : i + batch // world] for i in range(0, len(rows), batch // world)])
    assert len({len(share) for share in shares}) == 1, "every process trains as many batches"
    return [set().union(*(share[k] for share in shares)) for k in range(len(shares[0]))]


@pytest.mark.parametrize("n_rows", [40, 41, 13])
@pytest.mark.parametrize("skip", [0, 8])
def test_the_processes_together_train_the_batches_of_one_process(n_rows: int, skip: int) -> None:
    one = per_process_batches(n_rows, 1, 8, skip)
    two = per_process_batches(n_rows, 2, 8, skip)
    assert len(one) == len(two)
    assert two[: len(one) - 1] == one[:-1]
    # the last batch may repeat the epoch's first rows to give both processes a full share
    assert one[-1] <= two[-1] and len(two[-1] - one[-1]) <= 1


def test_each_validation_row_is_scored_by_exactly_one_process(tmp_path: Path) -> None:
    small = write_version(tmp_path / "v", {"train": 8, "val": 11, "test": 3})
    seen = []
    for rank in range(3):
        data = VersionDataModule(small, CONFIG.data_settings())
        data.trainer = SimpleNamespace(global_rank=rank, world_size=3)  # type: ignore[assignment]
        seen += list(data.val_dataloader().sampler)
    assert sorted(seen) == list(range(11))


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_version(tmp_path_factory)


@pytest.fixture(scope="module")
def two_processes(version: Path, tmp_path_factory: pytest.TempPathFactory) -> TrialResult:
    return train_trial(version, DDP, tmp_path_factory.mktemp("ddp"))


def test_two_processes_train_the_steps_of_one_and_score_validation_whole(
    version: Path, two_processes: TrialResult
) -> None:
    assert two_processes.device == "2 x cpu (DDP)"
    assert two_processes.global_step == 2 * (N_TRAIN // CONFIG.batch_size)
    # the best score recorded from the two processes' summed confusion matrices is the score of
    # the best checkpoint on the whole validation split, scored again in one process
    data = VersionDataModule(version, CONFIG.data_settings())
    model = load_trained(two_processes.best_checkpoint)
    probabilities = predict_probabilities(model, data.val_dataloader())
    truth = data.split(VAL).labels.numpy()
    scores = evaluate_predictions(truth, probabilities, list(data.classes))
    assert two_processes.best_val_macro_f1 == pytest.approx(scores["macro_f1"], abs=1e-9)


def test_a_ddp_trial_killed_mid_epoch_resumes_to_the_uninterrupted_result(
    version: Path, two_processes: TrialResult, tmp_path: Path
) -> None:
    # every process's random state is in last.ckpt: each draws its own dropout masks again
    assert_a_kill_resumes_to(two_processes, version, DDP, tmp_path)


def test_a_global_batch_that_does_not_split_over_the_devices_is_refused() -> None:
    with pytest.raises(ValueError, match="must split evenly over 3 devices"):
        TrialConfig(batch_size=8, devices=3)
    with pytest.raises(ValueError, match="must split evenly over 2 devices"):
        FinetuneSpec.model_validate(
            {"devices": 2, "search": "bayesian", "search_space": {"batch_size": [15, 16]}}
        )


def test_the_pruning_decision_of_a_process_copy_reaches_the_caller(tmp_path: Path) -> None:
    """A spawned process trains with a pickled copy of the callback; its decision to prune is
    read back from the study by the caller's own copy."""
    chosen = settings(search.storage_url(tmp_path, None), startup_trials=1)
    study = search.create_study(chosen, {})
    done = study.ask(search.distributions(chosen.search_space()))
    done.report(0.9, step=0)  # one finished trial, 0.9 after its first epoch
    study.tell(done, 0.9)
    proposal = search.propose(search.load_study(chosen, 1), 1, chosen.search_space())
    caller = search.OptunaPruning(proposal.trial, "val_macro_f1", chosen)
    copy = pickle.loads(pickle.dumps(caller))
    trainer = SimpleNamespace(
        sanity_checking=False,
        callback_metrics={"val_macro_f1": torch.tensor(0.1)},
        current_epoch=0,
        is_global_zero=True,
        world_size=1,
        should_stop=False,
    )
    copy.on_validation_end(trainer, None)
    assert trainer.should_stop and copy.pruned
    assert caller.pruned, "the caller reads the copy's decision from the study"
    assert np.isclose(search.load_study(chosen).get_trials()[1].intermediate_values[0], 0.1)

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from governance.finetune.data import VAL, VersionDataModule
from governance.finetune.encoder import load_encoder
from governance.finetune.evaluation import evaluate_predictions
from governance.finetune.training import (
    TrialConfig,
    TrialResult,
    load_trained,
    predict_probabilities,
    train_trial,
)
from tests.unit.test_finetune_data import CLASSES, write_version

N_TRAIN, N_VAL, BATCH = 40, 22, 8
STEPS_PER_EPOCH = math.ceil(N_TRAIN / BATCH)
# last.ckpt at step 7 falls in the middle of the second epoch (steps 6-10)
CONFIG = TrialConfig(
    epochs=2,
    learning_rate=1e-4,
    batch_size=BATCH,
    max_seq_length=16,
    seed=3,
    accelerator="cpu",
    patience=2,
    warmup_ratio=0.1,
    checkpoint_every_n_steps=7,
)


class Interrupt(pl.Callback):
    """Kills the run at a given step, as a lost worker would."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError(f"worker lost at step {self.at_step}")


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(left: Path, right: Path) -> None:
    a, b = weights(left), weights(right)
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def toy_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("curated") / "toy_reviews" / "2026-01-01"
    return write_version(root, {"train": N_TRAIN, "val": N_VAL, "test": 12})


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_version(tmp_path_factory)


@pytest.fixture(scope="module")
def uninterrupted(version: Path, tmp_path_factory: pytest.TempPathFactory) -> TrialResult:
    return train_trial(version, CONFIG, tmp_path_factory.mktemp("run_a"))


def test_a_tiny_fine_tune_returns_a_complete_result(uninterrupted: TrialResult) -> None:
    result = uninterrupted
    assert result.epochs_run == 2
    assert result.global_step == 2 * STEPS_PER_EPOCH
    assert result.resumed_from_step is None
    assert result.precision == "32-true" and result.device == "cpu"
    assert result.classes == tuple(CLASSES)
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert result.best_checkpoint.parent == result.last_checkpoint.parent
    assert result.last_checkpoint.name == "last.ckpt"
    assert result.samples_per_second is not None and result.samples_per_second > 0
    # three classes with distinct cue words: far above the 1/3 of guessing
    assert 0.6 < result.best_val_macro_f1 <= 1.0


def test_the_best_checkpoint_scores_what_training_recorded(
    version: Path, uninterrupted: TrialResult
) -> None:
    model = load_trained(uninterrupted.best_checkpoint)
    data = VersionDataModule(version, CONFIG.data_settings())
    probabilities = predict_probabilities(model, data.val_dataloader())
    report = evaluate_predictions(data.split(VAL).labels.numpy(), probabilities, model.classes)
    assert report["n"] == N_VAL
    assert report["macro_f1"] == pytest.approx(uninterrupted.best_val_macro_f1, abs=1e-6)


def test_same_seed_trains_the_same_weights_with_or_without_a_logger(
    version: Path, uninterrupted: TrialResult, tmp_path: Path
) -> None:
    logger = CSVLogger(tmp_path / "logs", name="trial", version=0)
    again = train_trial(version, CONFIG, tmp_path / "ckpt", logger=logger, log_every_n_steps=3)
    assert again.best_val_macro_f1 == uninterrupted.best_val_macro_f1
    assert again.global_step == uninterrupted.global_step
    assert_same_weights(again.last_checkpoint, uninterrupted.last_checkpoint)
    # and training did move the encoder away from its pretrained weights
    pretrained = load_encoder().state_dict()
    trained = weights(again.last_checkpoint)
    name = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained[name], pretrained[name.removeprefix("encoder.")])

    logged = pd.read_csv(tmp_path / "logs" / "trial" / "version_0" / "metrics.csv")
    steps = {column: logged.dropna(subset=[column])["step"].tolist() for column in logged}
    assert steps["train_loss"] == [2, 5, 8]  # global steps 3, 6, 9, counted from 0
    for column in ("val_loss", "val_macro_f1", "val_accuracy", "train_loss_epoch"):
        assert len(steps[column]) == CONFIG.epochs, column
    assert logged["val_macro_f1"].max() == pytest.approx(again.best_val_macro_f1)
    # val_loss is the row-weighted mean (the last val batch is short) of the final weights' loss
    final = load_trained(again.last_checkpoint)
    data = VersionDataModule(version, CONFIG.data_settings())
    probabilities = predict_probabilities(final, data.val_dataloader())
    truth = data.split(VAL).labels.numpy()
    expected = -np.log(probabilities[np.arange(len(truth)), truth]).mean()
    assert logged["val_loss"].dropna().iloc[-1] == pytest.approx(expected, rel=1e-4)


def assert_a_kill_resumes_to(
    uninterrupted: TrialResult, version: Path, config: TrialConfig, folder: Path
) -> None:
    """Killed at step 9 and run again: resumed from last.ckpt at step 7, it ends with the
    uninterrupted run's step, score and weights."""
    with pytest.raises(Exception, match="worker lost at step 9"):
        train_trial(version, config, folder, callbacks=[Interrupt(at_step=9)])
    resumed = train_trial(version, config, folder)
    assert resumed.resumed_from_step == 7
    assert resumed.global_step == uninterrupted.global_step
    assert resumed.epochs_run == uninterrupted.epochs_run
    assert resumed.best_val_macro_f1 == uninterrupted.best_val_macro_f1
    assert_same_weights(resumed.last_checkpoint, uninterrupted.last_checkpoint)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(
    version: Path, uninterrupted: TrialResult, tmp_path: Path
) -> None:
    assert_a_kill_resumes_to(uninterrupted, version, CONFIG, tmp_path)


def test_rerunning_a_finished_trial_trains_nothing(
    version: Path, uninterrupted: TrialResult
) -> None:
    rerun = train_trial(version, CONFIG, uninterrupted.last_checkpoint.parent)
    assert rerun.resumed_from_step == rerun.global_step == uninterrupted.global_step
    assert rerun.samples_per_second is None
    assert rerun.best_checkpoint == uninterrupted.best_checkpoint


def test_early_stopping_ends_a_stalled_trial_and_stays_ended(version: Path, tmp_path: Path) -> None:
    # a learning rate this small leaves every prediction, hence val macro F1, unchanged
    stalled = replace(CONFIG, epochs=6, patience=1, learning_rate=1e-12)
    first = train_trial(version, stalled, tmp_path)
    assert first.epochs_run == 2
    rerun = train_trial(version, stalled, tmp_path)
    assert rerun.epochs_run == 2 and rerun.global_step == first.global_step


def test_an_empty_validation_split_is_refused(tmp_path: Path) -> None:
    version = write_version(tmp_path / "v", {"train": 12, "val": 0, "test": 3})
    with pytest.raises(ValueError, match="val split is empty"):
        train_trial(version, CONFIG, tmp_path / "ckpt")


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"learning_rate": 0.0},
        {"warmup_ratio": 1.0},
        {"accelerator": "tpu"},
        {"checkpoint_every_n_steps": 0},
        {"max_train_rows": 0},
    ],
)
def test_bad_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrialConfig(**bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_asking_for_a_gpu_without_one_is_refused(version: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CUDA device"):
        train_trial(version, replace(CONFIG, accelerator="gpu"), tmp_path)

"""One fine-tuning trial on a published version: train, keep the best checkpoint, survive kills.

A trial writes two kinds of checkpoint into its folder: the best one by validation macro F1
(weights only: what gets evaluated and registered) and ``last.ckpt`` every
``checkpoint_every_n_steps`` steps (full training state). A task killed mid-epoch and run again
with the same folder resumes from ``last.ckpt`` and, on one device, finishes with the same
weights as a run that was never interrupted: the batch order, the random state behind dropout,
the optimiser and the schedule are all restored. A finished trial rerun trains nothing more.

With ``devices`` above 1 (or ``strategy: ddp``) the trial trains with Lightning's DDP in as many
spawned processes, gloo on the CPU and NCCL on GPUs. ``batch_size`` stays the global batch: each
process takes its interleaved share of every batch, so a step sees the rows one process would
have seen. The processes report back through ``outcome.json`` in the checkpoint folder, written
by rank 0 when the fit ends, because a spawned process's objects never return to the caller.

No Airflow and no experiment tracker here: callers pass a Lightning logger and callbacks in.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.strategies import DDPStrategy
from torch.utils.data import DataLoader

from governance.contract_finetune import check_batch_split
from governance.contracts import FinetuneSpec
from governance.errors import InvalidInputError
from governance.finetune.data import TRAIN, VAL, DataSettings, VersionDataModule
from governance.finetune.model import TextClassifier
from governance.publish import write_json_atomic

VAL_METRIC = "val_macro_f1"
LAST_CHECKPOINT = "last.ckpt"
OUTCOME = "outcome.json"
Accelerator = Literal["auto", "cpu", "gpu"]
Strategy = Literal["auto", "ddp"]
# The contract's fine-tune defaults are the defaults of a trial too.
_DEFAULTS = FinetuneSpec()
# Pre-tokenised tensors need no loader workers, so Lightning's advice to add some is noise.
# Validation metrics are reduced across DDP processes before they are logged (see the model), so
# Lightning's advice to sync them again is noise too.
_IGNORED_WARNINGS = (r".*does not have many workers.*", r".*sync_dist=True.*")
# On a resume the folder holds the interrupted attempt's checkpoints, and the data module restores
# the batch order itself (see VersionDataModule): Lightning's warnings about both are noise then.
_IGNORED_ON_RESUME = (
    r".*exists and is not empty.*",
    r".*resuming from a checkpoint that ended before the epoch ended.*",
)


@dataclass(frozen=True)
class TrialConfig:
    """Everything that decides a trial's outcome; two runs with equal configs train alike."""

    epochs: int = _DEFAULTS.epochs
    learning_rate: float = _DEFAULTS.learning_rate
    batch_size: int = _DEFAULTS.batch_size
    max_seq_length: int = _DEFAULTS.max_seq_length
    seed: int = _DEFAULTS.seed
    accelerator: Accelerator = "auto"
    devices: int = _DEFAULTS.devices
    strategy: Strategy = _DEFAULTS.strategy
    max_train_rows: int | None = _DEFAULTS.max_train_rows
    max_eval_rows: int | None = _DEFAULTS.max_eval_rows
    patience: int = _DEFAULTS.patience
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    checkpoint_every_n_steps: int = 200

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "max_seq_length", "patience", "devices")
        for name in (*positive, "checkpoint_every_n_steps"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise InvalidInputError(f"learning_rate: must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise InvalidInputError(f"weight_decay: must be at least 0, got {self.weight_decay}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise InvalidInputError(f"warmup_ratio: must lie in [0, 1), got {self.warmup_ratio}")
        if self.accelerator not in ("auto", "cpu", "gpu"):
            raise InvalidInputError(
                f"accelerator: must be auto, cpu or gpu, got {self.accelerator!r}"
            )
        if self.strategy not in ("auto", "ddp"):
            raise InvalidInputError(f"strategy: must be auto or ddp, got {self.strategy!r}")
        check_batch_split(self.batch_size, self.devices)
        # row limits are checked by DataSettings
        self.data_settings()

    def data_settings(self) -> DataSettings:
        return DataSettings(
            max_seq_length=self.max_seq_length,
            batch_size=self.batch_size,
            seed=self.seed,
            max_train_rows=self.max_train_rows,
            max_eval_rows=self.max_eval_rows,
        )

    @property
    def distributed(self) -> bool:
        return self.devices > 1 or self.strategy == "ddp"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrialResult:
    """What a trial produced; ``samples_per_second`` is None when this call trained no step."""

    best_val_macro_f1: float
    best_checkpoint: Path
    last_checkpoint: Path
    epochs_run: int
    global_step: int
    resumed_from_step: int | None
    samples_per_second: float | None
    precision: str
    device: str
    classes: tuple[str, ...]


def resolve_accelerator(choice: Accelerator, devices: int = 1) -> tuple[str, str]:
    """Lightning accelerator and precision: bf16 mixed on a CUDA GPU, full fp32 on the CPU.
    On GPUs, ``devices`` of them must be visible."""
    cuda = torch.cuda.is_available()
    if choice == "gpu" and not cuda:
        raise InvalidInputError("accelerator 'gpu' requested, but torch sees no CUDA device")
    if choice == "gpu" or (choice == "auto" and cuda):
        if devices > torch.cuda.device_count():
            raise InvalidInputError(
                f"devices: {devices} GPUs requested, torch sees {torch.cuda.device_count()}"
            )
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "cpu", "32-true"


def ddp_strategy(accelerator: str) -> DDPStrategy:
    """DDP in spawned processes: the only launcher that works from inside a worker's task (the
    default one runs the command line again, which is the worker's). The encoder's buffers are
    constants, so DDP need not broadcast them before every forward pass."""
    return DDPStrategy(
        start_method="spawn",
        process_group_backend="gloo" if accelerator == "cpu" else "nccl",
        forward_sync_buffers=False,
    )


def trainer_options(
    accelerator: str, precision: str, devices: int = 1, distributed: bool = False
) -> dict[str, Any]:
    """Trainer settings shared by trials and the benchmark, so the benchmark measures these.

    Deterministic kernels only on the CPU, where they cost nothing measurable; on a GPU they would
    slow the embedding backward pass and need a fixed cuBLAS workspace. The data module shards
    batches over DDP processes itself, so Lightning must not add its own sampler.
    """
    return {
        "accelerator": accelerator,
        "devices": devices,
        "strategy": ddp_strategy(accelerator) if distributed else "auto",
        "use_distributed_sampler": False,
        "precision": precision,
        "deterministic": accelerator == "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }


def describe_device(device: torch.device, world_size: int = 1) -> str:
    name = str(device)
    if device.type == "cuda":
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{world_size} x {name} (DDP)" if world_size > 1 else name


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainingThroughput(Callback):
    """Training rows per second over the training batches only (validation excluded).

    The first ``skip_batches`` batches of the call are not counted (warm-up).
    """

    def __init__(self, skip_batches: int = 0) -> None:
        self.skip_batches = skip_batches
        self.rows = 0
        self.seconds = 0.0
        self._batches = 0
        self._span_start: float | None = None

    @property
    def samples_per_second(self) -> float | None:
        """Rows per second of this process; under DDP every process trains as many rows at
        once, so the trial's figure is this times the world size."""
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._span_start is None and self._batches >= self.skip_batches:
            _synchronize(pl_module.device)
            self._span_start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._span_start is not None:
            self.rows += len(batch["labels"])
        self._batches += 1

    def _close_span(self, pl_module: pl.LightningModule) -> None:
        if self._span_start is not None:
            _synchronize(pl_module.device)
            self.seconds += time.perf_counter() - self._span_start
            self._span_start = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_span(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_span(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_span(pl_module)


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class RandomStateCheckpoint(Callback):
    """Keeps the global torch random state in checkpoints, so dropout after a resume draws what
    it would have drawn without the interruption. Under DDP each process draws its own masks
    (its batches are trimmed to other lengths), so the checkpoint keeps every process's state:
    every process builds the checkpoint, and rank 0 writes it."""

    @staticmethod
    def _own() -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def state_dict(self) -> dict[str, Any]:
        _, world = _rank_and_world()
        if world == 1:
            return self._own()
        states: list[Any] = [None] * world
        torch.distributed.all_gather_object(states, self._own())
        return {"per_rank": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        rank, _ = _rank_and_world()
        if "per_rank" in state_dict:
            # resumed on fewer or more processes than it was saved from: the nearest stream
            states = state_dict["per_rank"]
            state_dict = states[min(rank, len(states) - 1)]
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class KeepEarlyStop(Callback):
    """Lightning does not save that early stopping ended a run; without this a rerun of a stopped
    trial would train one more epoch before stopping again."""

    def __init__(self, early_stopping: EarlyStopping) -> None:
        self.early_stopping = early_stopping

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.early_stopping.wait_count >= self.early_stopping.patience:
            trainer.should_stop = True


class IgnoredWarnings(Callback):
    """Lightning's warnings that are noise for a trial, ignored in every process that trains
    it (spawned DDP processes start with fresh warning filters)."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = tuple(messages)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for message in self.messages:
            warnings.filterwarnings("ignore", message=message)


class TrialOutcome(Callback):
    """Saves the final state to ``last.ckpt`` and, from rank 0, the trial's figures to
    ``outcome.json``, when the fit ends: the same way back to the caller for one process and
    for DDP's spawned ones. At the end of the fit, not of training: a finished trial resumed
    trains nothing, and Lightning then skips the training hooks."""

    def __init__(
        self, checkpoint_dir: Path, best: ModelCheckpoint, throughput: TrainingThroughput
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.best = best
        self.throughput = throughput

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # every rank calls it: saving waits for all of them
        trainer.save_checkpoint(self.checkpoint_dir / LAST_CHECKPOINT, weights_only=False)
        if not trainer.is_global_zero:
            return
        rate = self.throughput.samples_per_second
        outcome = {
            "best_val_macro_f1": None
            if self.best.best_model_score is None
            else float(self.best.best_model_score),
            "best_checkpoint": self.best.best_model_path,
            "epochs_run": trainer.current_epoch,
            "global_step": trainer.global_step,
            "samples_per_second": None if rate is None else rate * trainer.world_size,
            "precision": str(trainer.precision),
            "device": describe_device(trainer.strategy.root_device, trainer.world_size),
        }
        write_json_atomic(self.checkpoint_dir / OUTCOME, outcome)


def checkpoint_step(path: Path) -> int:
    """The global step a Lightning checkpoint was written at."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return int(checkpoint["global_step"])


def _checkpoint_callbacks(
    config: TrialConfig, checkpoint_dir: Path
) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    best = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-{epoch:02d}-{step:06d}",
        monitor=VAL_METRIC,
        mode="max",
        save_top_k=1,
        save_weights_only=True,
    )
    last = ModelCheckpoint(
        dirpath=checkpoint_dir,
        save_top_k=0,
        save_last=True,
        every_n_train_steps=config.checkpoint_every_n_steps,
        enable_version_counter=False,
    )
    return best, last


def _prepared_data(version_dir: Path, config: TrialConfig) -> VersionDataModule:
    data = VersionDataModule(version_dir, config.data_settings())
    for split in (TRAIN, VAL):
        if len(data.split(split)) == 0:
            raise InvalidInputError(
                f"{version_dir}: the {split} split is empty; fine-tuning needs train and val rows"
            )
    return data


def _fit_or_resume(
    trainer: pl.Trainer, model: TextClassifier, data: VersionDataModule, last_path: Path
) -> int | None:
    """Fit, from ``last_path`` where an interrupted try left it; returns the step resumed
    from (None for a fresh start). ``TrialOutcome`` saves the final state too, so that running
    a finished trial again trains nothing."""
    resumed_from = checkpoint_step(last_path) if last_path.exists() else None
    (last_path.parent / OUTCOME).unlink(missing_ok=True)
    ignored = _IGNORED_WARNINGS + (_IGNORED_ON_RESUME if resumed_from is not None else ())
    trainer.callbacks.append(IgnoredWarnings(ignored))  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        # the filters a callback sets in this process end with the fit
        for message in ignored:
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(
            model, datamodule=data, ckpt_path=last_path if resumed_from is not None else None
        )
    return resumed_from


def _read_outcome(
    checkpoint_dir: Path, resumed_from: int | None, classes: Sequence[str]
) -> TrialResult:
    """The result a fit left in ``outcome.json`` (see ``TrialOutcome``)."""
    outcome = json.loads((checkpoint_dir / OUTCOME).read_text())
    if outcome["best_val_macro_f1"] is None:
        raise RuntimeError(f"{checkpoint_dir}: training ended without a validation score")
    return TrialResult(
        best_val_macro_f1=outcome["best_val_macro_f1"],
        best_checkpoint=Path(outcome["best_checkpoint"]),
        last_checkpoint=checkpoint_dir / LAST_CHECKPOINT,
        epochs_run=outcome["epochs_run"],
        global_step=outcome["global_step"],
        resumed_from_step=resumed_from,
        samples_per_second=outcome["samples_per_second"],
        precision=outcome["precision"],
        device=outcome["device"],
        classes=tuple(classes),
    )


def train_trial(
    version_dir: Path,
    config: TrialConfig,
    checkpoint_dir: Path,
    *,
    callbacks: Sequence[Callback] = (),
    logger: Logger | None = None,
    log_every_n_steps: int = 50,
) -> TrialResult:
    """Fine-tune on the version's train split, select on val macro F1, resume if interrupted.

    ``callbacks`` run before the trial's own; ``logger`` (none by default) receives the metrics
    every ``log_every_n_steps`` steps and after every validation.
    """
    version_dir, checkpoint_dir = Path(version_dir), Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    accelerator, precision = resolve_accelerator(config.accelerator, config.devices)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    data = _prepared_data(version_dir, config)
    model = TextClassifier(
        data.classes,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
    )
    best, last = _checkpoint_callbacks(config, checkpoint_dir)
    early = EarlyStopping(monitor=VAL_METRIC, mode="max", patience=config.patience)
    throughput = TrainingThroughput()
    trainer = pl.Trainer(
        **trainer_options(accelerator, precision, config.devices, config.distributed),
        max_epochs=config.epochs,
        logger=logger if logger is not None else False,
        log_every_n_steps=log_every_n_steps,
        callbacks=[
            *callbacks,
            RandomStateCheckpoint(),
            KeepEarlyStop(early),
            throughput,
            early,
            TrialOutcome(checkpoint_dir, best, throughput),
            best,
            last,
        ],
    )
    last_path = checkpoint_dir / LAST_CHECKPOINT
    resumed_from = _fit_or_resume(trainer, model, data, last_path)
    return _read_outcome(checkpoint_dir, resumed_from, data.classes)


def load_trained(checkpoint: Path) -> TextClassifier:
    """A trained classifier from one of this project's own checkpoints, on the CPU, in eval mode.

    Only for checkpoints this project wrote: they are unpickled in full.
    """
    model = TextClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    return model.eval()


def predict_probabilities(model: TextClassifier, dataloader: DataLoader) -> np.ndarray:
    """Class probabilities (n, n_classes) for every row of the loader, in its order."""
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.inference_mode():
            for index, batch in enumerate(dataloader):
                batch = {key: value.to(model.device) for key, value in batch.items()}
                parts.append(model.predict_step(batch, index).cpu())
    finally:
        model.train(was_training)
    if not parts:
        return np.zeros((0, model.n_classes), dtype=np.float32)
    return torch.cat(parts).numpy()

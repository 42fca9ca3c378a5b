"""The contract's ``finetune`` section: the fine-tune DAG's defaults, its search and the
promotion margin. Like ``governance.contracts``, it imports no pandas and no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from governance.contract_base import Strict as _Strict
from governance.errors import InvalidInputError

# The grid search's learning rates, as factors of the requested one: one trial per factor.
GRID_LEARNING_RATE_FACTORS = (1.0, 2.0, 0.5, 4.0, 0.25, 8.0, 0.125)
SearchKind = Literal["grid", "bayesian"]
PrunerKind = Literal["median", "successive_halving", "none"]
StrategyKind = Literal["auto", "ddp"]


class FloatRange(_Strict):
    """A continuous hyper-parameter range; ``log`` samples it on a log scale."""

    low: float = Field(ge=0)
    high: float = Field(ge=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise InvalidInputError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise InvalidInputError("a log-scale range needs low > 0")
        return self


class IntRange(_Strict):
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise InvalidInputError(f"low {self.low} is above high {self.high}")
        return self


class SearchSpace(_Strict):
    """What the Bayesian search varies; the other trial settings come from the fine-tune
    section (or the form) as they are."""

    learning_rate: FloatRange = FloatRange(low=1e-5, high=1e-3, log=True)
    batch_size: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    weight_decay: FloatRange = FloatRange(low=0.0, high=0.1)
    warmup_ratio: FloatRange = FloatRange(low=0.0, high=0.2)
    epochs: IntRange = IntRange(low=1, high=3)

    @field_validator("batch_size")
    @classmethod
    def _batch_sizes(cls, sizes: list[int]) -> list[int]:
        if any(size < 1 or size > 1024 for size in sizes) or len(set(sizes)) != len(sizes):
            raise InvalidInputError(f"distinct sizes in [1, 1024], got {sizes}")
        return sorted(sizes)

    @field_validator("warmup_ratio")
    @classmethod
    def _warmup_below_one(cls, span: FloatRange) -> FloatRange:
        if span.high >= 1:
            raise InvalidInputError(f"warm-up ratios lie in [0, 1), got high {span.high}")
        return span


class FinetuneSpec(_Strict):
    """Defaults of the fine-tune DAG (each overridable from its trigger form) and the margin a
    challenger must beat the champion by to be promoted.

    ``search: grid`` trains one trial per learning rate around ``learning_rate``;
    ``search: bayesian`` lets Optuna's TPE sampler choose each trial's settings from
    ``search_space`` after the results of the trials before it, and prunes a trial whose
    validation macro-F1 after an epoch falls behind (``pruner``)."""

    epochs: int = Field(default=3, ge=1, le=100, title="Epochs")
    learning_rate: float = Field(default=5e-5, gt=0, le=1, title="Learning rate")
    # The global batch: with several devices each takes an equal share of it.
    batch_size: int = Field(default=32, ge=1, le=1024, title="Batch size")
    max_seq_length: int = Field(default=128, ge=8, le=512, title="Max sequence length")
    trials: int = Field(default=2, ge=1, le=100, title="Number of trials")
    search: SearchKind = Field(default="grid", title="Search")
    search_space: SearchSpace = Field(default_factory=SearchSpace)
    pruner: PrunerKind = "median"
    # Trials the TPE sampler draws at random before it models the results.
    startup_trials: int = Field(default=2, ge=1)
    # Trials of one run training at once (empty: as many as the gpu pool's slots); the fewer, the
    # more finished results each Bayesian choice sees.
    parallel_trials: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0, title="Seed")
    # Devices per trial (GPUs on a GPU worker, processes on the CPU); above 1, or with strategy
    # ddp, a trial trains with Lightning's DDP. The gpu pool gives a trial as many slots and
    # the Kubernetes pod as many GPUs.
    devices: int = Field(default=1, ge=1, le=16, title="Devices per trial")
    strategy: StrategyKind = Field(default="auto", title="Strategy")
    patience: int = Field(default=2, ge=1)
    max_train_rows: int | None = Field(default=None, ge=1)
    max_eval_rows: int | None = Field(default=None, ge=1)
    promotion_margin: float = Field(default=0.005, ge=0.0, le=1.0)
    # 2 or more: the mean of the top k finished trials' probabilities competes with the best
    # single trial on the test split and is registered only if it beats it by the margin.
    ensemble_top_k: int = Field(default=1, ge=1, le=10)
    max_champion_age_days: float = Field(default=7.0, gt=0)

    @model_validator(mode="after")
    def _grid_size(self) -> FinetuneSpec:
        check_grid_size(self.search, self.trials)
        check_batch_split(self.batch_size, self.devices)
        for size in self.search_space.batch_size if self.search == "bayesian" else ():
            check_batch_split(size, self.devices)
        return self


def check_batch_split(batch_size: int, devices: int) -> None:
    """Each DDP process takes an equal share of the global batch."""
    if batch_size % devices:
        raise InvalidInputError(
            f"batch_size: the global batch {batch_size} must split evenly over {devices} devices"
        )


def check_grid_size(search: str, trials: int) -> None:
    """The grid has one trial per learning-rate factor, so it cannot run more."""
    if search == "grid" and trials > len(GRID_LEARNING_RATE_FACTORS):
        raise InvalidInputError(
            f"trials: the grid search runs at most {len(GRID_LEARNING_RATE_FACTORS)} trials, "
            f"got {trials}; use search: bayesian for more"
        )

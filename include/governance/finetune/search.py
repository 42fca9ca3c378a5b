"""Bayesian hyper-parameter search over mapped tasks: Optuna's ask-and-tell on a shared storage.

Each trial is its own task, possibly on another worker, so no process runs ``study.optimize``.
The plan step creates one study per Airflow run in a database every worker reaches; each trial
task asks the study for its settings (the TPE sampler sees every trial finished so far, and
with ``constant_liar`` the ones still running), reports validation macro-F1 after every epoch so
the pruner can stop it, and tells the result. A trial is found again by its map index, so a
retried task resumes the same Optuna trial with the same settings instead of asking a new one.

No Airflow and no experiment tracker here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import pytorch_lightning as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState
from pytorch_lightning.callbacks import Callback

from governance.contract_finetune import PrunerKind, SearchSpace
from governance.finetune.evaluation import figure_png

# The trial's user attribute that ties an Optuna trial to the mapped task that trains it.
MAP_INDEX_ATTR = "map_index"
# Set on a trial when its pruner stopped it, by whichever process trained it.
PRUNED_ATTR = "pruned"
# Trial settings the search space decides; the rest of a trial's configuration is the request's.
SEARCHED = ("learning_rate", "batch_size", "weight_decay", "warmup_ratio", "epochs")
DEFAULT_STORAGE = "optuna/studies.db"
# A trial that never reported (killed before its first epoch ended) is closed as failed.
FAILED, COMPLETE, PRUNED = "fail", "complete", "pruned"
RUNNING = "running"
_STATES = {
    TrialState.COMPLETE: COMPLETE,
    TrialState.PRUNED: PRUNED,
    TrialState.FAIL: FAILED,
    TrialState.RUNNING: RUNNING,
    TrialState.WAITING: "waiting",
}

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SearchSettings:
    """What every trial task of one run needs to reach its study and ask it alike."""

    study: str
    storage: str
    space: dict[str, Any]
    pruner: PrunerKind
    startup_trials: int
    seed: int

    def search_space(self) -> SearchSpace:
        return SearchSpace.model_validate(self.space)

    def shared(self) -> dict[str, Any]:
        """What travels to the trial tasks in their mapped argument (an XCom any UI user can
        read): everything but the storage URL, which may hold a password; each task finds the
        storage itself."""
        return {key: value for key, value in asdict(self).items() if key != "storage"}

    @classmethod
    def from_shared(cls, shared: dict[str, Any], storage: str) -> SearchSettings:
        return cls(**shared, storage=storage)


def storage_url(root: Path, configured: str | None) -> str:
    """The configured storage (a SQLAlchemy URL), else a SQLite file in the data root."""
    if configured:
        return configured
    path = Path(root) / DEFAULT_STORAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _storage(url: str) -> optuna.storages.RDBStorage:
    # SQLite serialises writers: concurrent trials wait for the lock instead of failing.
    engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if not url.startswith("sqlite"):
        engine["pool_pre_ping"] = True
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    return {
        "learning_rate": FloatDistribution(
            space.learning_rate.low, space.learning_rate.high, log=space.learning_rate.log
        ),
        "batch_size": CategoricalDistribution(space.batch_size),
        "weight_decay": FloatDistribution(
            space.weight_decay.low, space.weight_decay.high, log=space.weight_decay.log
        ),
        "warmup_ratio": FloatDistribution(
            space.warmup_ratio.low, space.warmup_ratio.high, log=space.warmup_ratio.log
        ),
        "epochs": IntDistribution(space.epochs.low, space.epochs.high),
    }


def _pruner(kind: PrunerKind, startup_trials: int) -> optuna.pruners.BasePruner:
    if kind == "median":
        # Compared from the first epoch on, once as many trials as the sampler's random start
        # have reported.
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def load_study(settings: SearchSettings, index: int = 0) -> optuna.Study:
    """The run's study with a sampler seeded per trial: each task builds its own sampler, and
    one seed everywhere would draw the same random start in every task."""
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed * 1_000 + index,
        n_startup_trials=settings.startup_trials,
        multivariate=True,
        constant_liar=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.load_study(
            study_name=settings.study,
            storage=_storage(settings.storage),
            sampler=sampler,
            pruner=_pruner(settings.pruner, settings.startup_trials),
        )


def create_study(settings: SearchSettings, attributes: dict[str, str]) -> optuna.Study:
    """The run's study, created once (a retried plan finds it)."""
    study = optuna.create_study(
        study_name=settings.study,
        storage=_storage(settings.storage),
        direction="maximize",
        load_if_exists=True,
    )
    for key, value in attributes.items():
        study.set_user_attr(key, value)
    return study


@dataclass
class Proposal:
    """One trial's settings; ``trial`` is None when the trial has already been told."""

    number: int
    params: dict[str, Any]
    trial: optuna.Trial | None
    state: str = RUNNING

    def configure(self, base: dict[str, Any]) -> dict[str, Any]:
        """The trial's configuration: the request's, with the searched settings replaced."""
        return {**base, **{name: self.params[name] for name in SEARCHED}}


def _trial_of(study: optuna.Study, index: int) -> FrozenTrial | None:
    found = [
        t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(MAP_INDEX_ATTR) == index
    ]
    return min(found, key=lambda t: t.number) if found else None


def propose(study: optuna.Study, index: int, space: SearchSpace) -> Proposal:
    """The Optuna trial of the mapped task ``index``: the one an earlier try opened, else a
    new one asked from the study."""
    earlier = _trial_of(study, index)
    if earlier is not None and earlier.state == TrialState.RUNNING:
        # Optuna's Trial is built on the storage's trial id; the frozen trial carries it.
        return Proposal(earlier.number, earlier.params, optuna.Trial(study, earlier._trial_id))
    if earlier is not None:
        return Proposal(earlier.number, earlier.params, None, _STATES[earlier.state])
    trial = study.ask(distributions(space))
    trial.set_user_attr(MAP_INDEX_ATTR, index)
    return Proposal(trial.number, dict(trial.params), trial)


class OptunaPruning(Callback):
    """Reports validation macro-F1 after every epoch and stops the trial when the pruner says
    so. A trial already told trains nothing more; a resumed one that was due to be pruned
    stops before training.

    Under DDP the process of rank 0 alone reports and decides, and tells the others, so all of
    them stop together. A spawned process receives a pickled copy of this callback: the copy
    opens the study again from ``settings`` (an Optuna study does not pickle), and the decision
    to prune is kept in the trial's user attributes, where the caller's copy reads it."""

    def __init__(
        self, trial: optuna.Trial | None, monitor: str, settings: SearchSettings | None = None
    ) -> None:
        self.trial = trial
        self.monitor = monitor
        self.settings = settings
        self._told = trial is None
        self._trial_id = None if trial is None else trial._trial_id
        self._pruned = False

    def __getstate__(self) -> dict[str, Any]:
        if self.settings is None and self.trial is not None:
            raise TypeError("an OptunaPruning without settings cannot cross into a process")
        return {**self.__dict__, "trial": None}

    def _open(self) -> optuna.Trial:
        if self.trial is None:
            assert self.settings is not None and self._trial_id is not None
            self.trial = optuna.Trial(load_study(self.settings), self._trial_id)
        return self.trial

    @property
    def pruned(self) -> bool:
        if self._pruned or self._told:
            return self._pruned
        trial = self._open()
        stored = trial.study.get_trials(deepcopy=False)[trial.number].user_attrs
        return bool(stored.get(PRUNED_ATTR))

    def _decide(self, trainer: pl.Trainer, prune: Callable[[optuna.Trial], bool]) -> None:
        """Rank 0 asks the pruner; every process stops with it."""
        decision = False
        if trainer.is_global_zero:
            trial = self._open()
            decision = prune(trial)
            if decision:
                trial.set_user_attr(PRUNED_ATTR, True)
        if trainer.world_size > 1:
            decision = trainer.strategy.broadcast(decision, src=0)
        if decision:
            self._pruned = trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._told:
            trainer.should_stop = True
            return

        def due(trial: optuna.Trial) -> bool:
            reported = trial.study.get_trials(deepcopy=False)[trial.number].intermediate_values
            return bool(reported) and trial.should_prune()

        self._decide(trainer, due)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._told or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return

        def report(trial: optuna.Trial) -> bool:
            trial.report(float(value), step=trainer.current_epoch)
            return trial.should_prune()

        self._decide(trainer, report)


def tell(study: optuna.Study, proposal: Proposal, value: float, pruned: bool) -> str:
    """Record the trial's outcome once; returns its state (complete or pruned)."""
    if proposal.trial is None:
        return proposal.state
    if pruned:
        study.tell(proposal.trial, state=TrialState.PRUNED)
        return PRUNED
    study.tell(proposal.trial, value)
    return COMPLETE


def close(study: optuna.Study) -> list[int]:
    """Fail the trials still running when the search ends (asked by a try that died before it
    was tied to its task): they would otherwise stay running in the study for ever."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for trial in stale:
        study.tell(trial.number, state=TrialState.FAIL)
    return [t.number for t in stale]


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial: number, task, state, value, settings and per-epoch validation scores."""
    return [
        {
            "number": t.number,
            MAP_INDEX_ATTR: t.user_attrs.get(MAP_INDEX_ATTR),
            "state": _STATES[t.state],
            "value": t.value,
            "params": t.params,
            "intermediate_values": {str(k): v for k, v in sorted(t.intermediate_values.items())},
        }
        for t in study.get_trials(deepcopy=False)
    ]


def best_so_far(values: list[float | None]) -> list[float | None]:
    """The running maximum of the trials' values in trial order (None until one finishes)."""
    best: float | None = None
    out: list[float | None] = []
    for value in values:
        if value is not None and not math.isnan(value):
            best = value if best is None else max(best, value)
        out.append(best)
    return out


def importances(study: optuna.Study) -> dict[str, float] | None:
    """Optuna's parameter importances (fANOVA), or None while fewer than two trials finished
    with different settings."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2 or len({tuple(sorted(t.params.items())) for t in complete}) < 2:
        return None
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):
        return None
    return {name: float(value) for name, value in found.items()}


def history_png(rows: list[dict[str, Any]], title: str) -> bytes:
    """Each trial's validation macro-F1 (pruned trials at their last report) and the best so
    far, in trial order."""
    figure = Figure(figsize=(6.4, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for state, marker in ((COMPLETE, "o"), (PRUNED, "x")):
        shown = [r for r in rows if r["state"] == state]
        values = _plotted([_last_value(r) for r in shown])
        axes.scatter([r["number"] for r in shown], values, marker=marker, label=state)
    complete = [r["value"] if r["state"] == COMPLETE else None for r in rows]
    best = _plotted(best_so_far(complete))
    axes.step([r["number"] for r in rows], best, where="post", label="best")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("trial")
    axes.set_ylabel("validation macro-F1")
    axes.set_title(title)
    axes.legend(loc="best")
    return figure_png(figure)


def _plotted(values: list[float | None]) -> list[float]:
    """Missing values as NaN, which matplotlib leaves out."""
    return [math.nan if value is None else value for value in values]


def _last_value(row: dict[str, Any]) -> float | None:
    if row["value"] is not None:
        return float(row["value"])
    steps = row["intermediate_values"]
    return steps[max(steps, key=int)] if steps else None


def importances_png(found: dict[str, float], title: str) -> bytes:
    figure = Figure(figsize=(6.4, 0.6 + 0.5 * max(len(found), 1)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    names = list(found)[::-1]
    axes.barh(names, [found[n] for n in names])
    axes.set_xlabel("importance (fANOVA)")
    axes.set_title(title)
    return figure_png(figure)

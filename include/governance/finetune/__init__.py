"""One fine-tune run of a dataset version, step by step: tracking, trials, evaluation, registry.

Each step is a function an orchestrator runs as its own task (the trials as mapped tasks) and a
test can run in one process. Every step finds what an earlier try of the same Airflow run left in
MLflow (runs are keyed by the Airflow run id and trial) instead of creating it twice, and each
trial checkpoints into a folder stable per (run, trial), so a retried or killed task resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from governance import frames as F
from governance import metrics as governance_metrics
from governance import tracking
from governance.contract_finetune import (
    GRID_LEARNING_RATE_FACTORS,
    FinetuneSpec,
    PrunerKind,
    SearchKind,
    SearchSpace,
    check_grid_size,
)
from governance.contracts import Contract
from governance.errors import InvalidInputError
from governance.finetune import bayesian, ensemble, search
from governance.finetune.bayesian import BAYESIAN
from governance.finetune.evaluation import confusion_matrix_png, evaluate_predictions
from governance.finetune.training import (
    VAL_METRIC,
    TrialConfig,
    TrialResult,
    load_trained,
    predict_probabilities,
    train_trial,
)
from governance.layout import DatasetLayout, run_slug
from governance.snapshot import build_snapshot
from governance.tracking import promotion, run_inputs, serving

PARENT, TRIAL = "parent", "trial"
ROLE_TAG, TRIAL_TAG, DRY_RUN_TAG = "governance.role", "governance.trial", "governance.dry_run"
SELECTION_METRIC = VAL_METRIC  # trials are selected on the score they train against
_DEFAULTS = FinetuneSpec()
TEST_METRIC = "test_macro_f1"


@dataclass(frozen=True)
class FinetuneRequest:
    """What a fine-tune run was asked for: the contract's defaults with the form's overrides."""

    dataset: str
    version: str | None = None
    trial: TrialConfig = field(default_factory=TrialConfig)  # what the search varies around
    trials: int = _DEFAULTS.trials
    search: SearchKind = _DEFAULTS.search
    search_space: SearchSpace = field(default_factory=SearchSpace)
    pruner: PrunerKind = _DEFAULTS.pruner
    startup_trials: int = _DEFAULTS.startup_trials
    promotion_margin: float = _DEFAULTS.promotion_margin
    ensemble_top_k: int = _DEFAULTS.ensemble_top_k
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.search not in ("grid", BAYESIAN):
            raise InvalidInputError(f"search: must be grid or bayesian, got {self.search!r}")
        if isinstance(self.search_space, dict):  # as a form or a contract dump gives it
            object.__setattr__(self, "search_space", SearchSpace.model_validate(self.search_space))
        check_grid_size(self.search, self.trials)

    @classmethod
    def from_contract(cls, contract: Contract, **overrides: Any) -> FinetuneRequest:
        """The contract's fine-tune settings, each replaced by an override that is not None;
        the trial's settings go to ``trial``, the run's to the request."""
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = {**contract.finetune.model_dump(), **given}
        trial_names = {f.name for f in fields(TrialConfig)}
        own_names = {f.name for f in fields(cls)} - {"dataset", "trial"}
        unknown = set(given) - trial_names - own_names
        if unknown:
            raise InvalidInputError(f"not a fine-tune setting: {', '.join(sorted(unknown))}")
        trial = TrialConfig(**{k: v for k, v in settings.items() if k in trial_names})
        if trial.devices > contract.finetune.devices:
            raise InvalidInputError(
                f"devices: {trial.devices} is more than the contract's "
                f"{contract.finetune.devices}, which the gpu pool slots and the pods reserve"
            )
        own = {k: v for k, v in settings.items() if k in own_names}
        return cls(dataset=contract.name, trial=trial, **own)


@dataclass(frozen=True)
class RunContext:
    """Who runs a step: the Airflow ids that every MLflow run is tagged with."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    root: Path
    tracking_uri: str | None = None
    # The Optuna storage (a SQLAlchemy URL) every trial of a Bayesian search reaches; None: a
    # SQLite file in the data root.
    study_storage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return run_slug(self.run_id)

    @property
    def study_name(self) -> str:
        """One study per Airflow run: its retried tasks find it, other runs do not."""
        return f"{self.dag_id}/{self.run_id}"


def trial_grid(request: FinetuneRequest) -> list[dict[str, Any]]:
    """A grid over the learning rate around the requested one, one trial per value."""
    base = request.trial
    return [
        {"index": index, "config": asdict(replace(base, learning_rate=base.learning_rate * factor))}
        for index, factor in enumerate(GRID_LEARNING_RATE_FACTORS[: request.trials])
    ]


def search_settings(request: FinetuneRequest, context: RunContext) -> search.SearchSettings:
    return search.SearchSettings(
        study=context.study_name,
        storage=search.storage_url(context.root, context.study_storage),
        space=request.search_space.model_dump(),
        pruner=request.pruner,
        startup_trials=request.startup_trials,
        seed=request.trial.seed,
    )


def plan_trials(request: FinetuneRequest, context: RunContext) -> list[dict[str, Any]]:
    """The run's trials, one mapped task each: the learning-rate grid, or as many Bayesian
    trials whose settings each task asks the run's study for when it starts."""
    if request.search != BAYESIAN:
        return trial_grid(request)
    settings = search_settings(request, context)
    search.create_study(
        settings, {"dataset": request.dataset, "dag_id": context.dag_id, "run_id": context.run_id}
    )
    return [
        {"index": index, "config": asdict(request.trial), "search": settings.shared()}
        for index in range(request.trials)
    ]


def checkpoint_dir(context: RunContext, dataset: str, trial: int) -> Path:
    """Stable per (DAG run, trial): a retry finds the checkpoints of the try it replaces."""
    return DatasetLayout(context.root, dataset).checkpoints(context.run_id, trial)


def _run_key(context: RunContext) -> dict[str, str]:
    """The tags a later try of the same Airflow run finds its MLflow runs by."""
    return {tracking.TAG_DAG_ID: context.dag_id, tracking.TAG_DAG_RUN_ID: context.run_id}


def _find_run(client: MlflowClient, experiment_id: str, context: RunContext, role: str, trial=None):
    query = (
        f"tags.`{tracking.TAG_DAG_RUN_ID}` = '{context.run_id}' "
        f"and tags.`{tracking.TAG_DAG_ID}` = '{context.dag_id}' and tags.`{ROLE_TAG}` = '{role}'"
    )
    if trial is not None:
        query += f" and tags.`{TRIAL_TAG}` = '{trial}'"
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    return found[0] if found else None


def _tags(context: RunContext, snapshot: run_inputs.Snapshot) -> dict[str, str]:
    return tracking.lineage_tags(
        dag_id=context.dag_id,
        run_id=context.run_id,
        task_id=context.task_id,
        try_number=context.try_number,
        dataset=snapshot.dataset,
        version=snapshot.version,
        manifest_sha256=snapshot.manifest_sha256,
    )


def start_parent_run(request: FinetuneRequest, context: RunContext) -> dict[str, Any]:
    """Snapshot the version and open (or find) the DAG run's parent MLflow run with its
    lineage: tags, the three splits as inputs, the governance report and manifests."""
    snapshot_path = build_snapshot(context.root, request.dataset, request.version)
    snapshot = run_inputs.read_snapshot(snapshot_path)
    client = tracking.connect(context.tracking_uri)
    experiment_id = tracking.ensure_experiment(client, request.dataset)
    run = _find_run(client, experiment_id, context, PARENT)
    if run is None:
        run = client.create_run(
            experiment_id,
            run_name=f"{request.dataset}@{snapshot.version} {context.run_id}",
            tags={ROLE_TAG: PARENT, **_run_key(context)},
        )
        run_inputs.log_dataset_inputs(client, run.info.run_id, snapshot_path)
        run_inputs.log_version_artifacts(client, run.info.run_id, snapshot_path)
    run_id = run.info.run_id
    tracking.set_tags(
        client, run_id, {**_tags(context, snapshot), DRY_RUN_TAG: str(request.dry_run).lower()}
    )
    logged = client.get_run(run_id).data.params
    for key, value in asdict(replace(request, version=snapshot.version)).items():
        if key not in logged:
            shown = value.model_dump_json() if isinstance(value, SearchSpace) else value
            client.log_param(run_id, key, shown)
    return {"parent_run_id": run_id, "snapshot": str(snapshot_path), "version": snapshot.version}


def _trial_run(
    client: MlflowClient,
    experiment_id: str,
    context: RunContext,
    trial: dict[str, Any],
    parent_run_id: str,
) -> str:
    """The trial's child run: the one an earlier try of this Airflow run opened, else a new one
    with the trial's configuration as its parameters."""
    index = int(trial["index"])
    run = _find_run(client, experiment_id, context, TRIAL, index)
    if run is None:
        run = client.create_run(
            experiment_id,
            run_name=f"trial {index}",
            tags={
                ROLE_TAG: TRIAL,
                TRIAL_TAG: str(index),
                "mlflow.parentRunId": parent_run_id,
                **_run_key(context),
            },
        )
        for key, value in trial["config"].items():
            client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def _log_trial_result(client: MlflowClient, run_id: str, result: TrialResult) -> None:
    metrics = {
        f"best_{SELECTION_METRIC}": result.best_val_macro_f1,
        "epochs_run": result.epochs_run,
        "global_step": result.global_step,
        "resumed_from_step": -1 if result.resumed_from_step is None else result.resumed_from_step,
    }
    if result.samples_per_second is not None:
        metrics["train_samples_per_second"] = result.samples_per_second
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
    client.set_tag(run_id, "training.precision", result.precision)
    client.set_tag(run_id, "training.device", result.device)
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def run_trial(
    trial: dict[str, Any],
    parent: dict[str, Any],
    dataset: str,
    context: RunContext,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train one trial as a child run of the parent; resumes from its checkpoint on a retry.

    A Bayesian trial first asks the run's study for its settings (a retry gets the same Optuna
    trial back), reports every epoch to the pruner and tells the study its outcome.
    ``callbacks`` are extra Lightning callbacks (monitoring, or a test's interruption)."""
    from pytorch_lightning.loggers import MLFlowLogger

    snapshot_path = Path(parent["snapshot"])
    snapshot = run_inputs.read_snapshot(snapshot_path)
    client = tracking.connect(context.tracking_uri)
    experiment_id = tracking.ensure_experiment(client, dataset)
    index = int(trial["index"])
    storage = search.storage_url(context.root, context.study_storage)
    searched = bayesian.SearchedTrial.open(trial, storage) if "search" in trial else None
    config = searched.config if searched else trial["config"]
    run_id = _trial_run(
        client, experiment_id, context, {**trial, "config": config}, parent["parent_run_id"]
    )
    tracking.set_tags(client, run_id, {**_tags(context, snapshot), **bayesian.trial_tags(searched)})
    logger = MLFlowLogger(
        tracking_uri=client.tracking_uri, run_id=run_id, experiment_name=dataset, log_model=False
    )
    result = train_trial(
        snapshot_path,
        TrialConfig(**config),
        checkpoint_dir(context, dataset, index),
        callbacks=[*callbacks, *([searched.pruning] if searched else [])],
        logger=logger,
    )
    state = searched.tell(result.best_val_macro_f1) if searched else search.COMPLETE
    if searched:
        client.set_tag(run_id, bayesian.STATE_TAG, state)
    _log_trial_result(client, run_id, result)
    return {
        "index": index,
        "run_id": run_id,
        "val_macro_f1": result.best_val_macro_f1,
        "checkpoint": str(result.best_checkpoint),
        "resumed_from_step": result.resumed_from_step,
        "samples_per_second": result.samples_per_second,
        "device": result.device,
        "precision": result.precision,
        "config": config,
        "state": state,
        "number": searched.proposal.number if searched else None,
    }


def select_best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The finished (not pruned) trial with the best validation macro-F1; the lower index wins
    a tie. Pruned trials compete only when every trial was pruned."""
    if not results:
        raise InvalidInputError("no trial finished; nothing to select")
    complete = [r for r in results if r.get("state", search.COMPLETE) == search.COMPLETE]
    return max(
        sorted(complete or results, key=lambda r: r["index"]), key=lambda r: r["val_macro_f1"]
    )


def _test_split(snapshot_path: Path) -> pd.DataFrame:
    return pd.read_parquet(snapshot_path / "test.parquet", columns=[F.TEXT, F.LABEL])


def _probabilities_of(model_uri: str, texts: pd.Series) -> np.ndarray:
    frame = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({F.TEXT: texts}))
    return np.asarray(frame, dtype=float)


def _log_evaluation(
    client: MlflowClient,
    run_id: str,
    best: dict[str, Any],
    scores: dict[str, Any],
    classes: list[str],
) -> dict[str, Any]:
    """The test split's figures as metrics of the parent run, the full evaluation and the
    confusion matrix as artifacts; returns the metrics."""
    metrics = {
        "test_accuracy": scores["accuracy"],
        TEST_METRIC: scores["macro_f1"],
        "test_expected_calibration_error": scores["expected_calibration_error"],
        f"best_{SELECTION_METRIC}": best["val_macro_f1"],
        **{f"test_f1_{c}": v for c, v in scores["per_class_f1"].items() if v is not None},
    }
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
    client.set_tag(run_id, "governance.best_trial", str(best["index"]))
    client.log_dict(run_id, scores, "evaluation/test_metrics.json")
    png = confusion_matrix_png(scores["confusion_matrix"], classes, "test split")
    tracking.log_bytes(client, run_id, png, "evaluation/confusion_matrix.png")
    return metrics


def _register_and_promote(
    client: MlflowClient,
    request: FinetuneRequest,
    run_id: str,
    model_uri: str,
    test_f1: float,
    score_on_this_split: Callable[[str], float],
) -> dict[str, Any]:
    """Register the model, then move the champion alias to it only if it beats the champion,
    scored afresh on the same test split, by the margin."""
    name = promotion.registered_model_name(request.dataset)
    registered = promotion.register(client, model_uri, name, run_id)
    decision = promotion.promote_if_better(
        client,
        name,
        registered.version,
        test_f1,
        margin=request.promotion_margin,
        metric=TEST_METRIC,
        champion_score=lambda champion: score_on_this_split(f"models:/{name}/{champion.version}"),
    )
    current = promotion.champion(client, name)
    return {
        "model_name": name,
        "registered": str(registered.version),
        "promoted": decision.promote,
        "reason": decision.reason,
        "champion": None if current is None else str(current.version),
    }


def _test_probabilities(
    model: Any, config: dict[str, Any], test: pd.DataFrame, classes: list[str]
) -> np.ndarray:
    """A trained trial's class probabilities on the test split, tokenised as it was trained."""
    from governance.finetune.data import eval_loader, tokenize_split
    from governance.finetune.encoder import load_tokenizer

    trial = TrialConfig(**config)
    split = tokenize_split(test, load_tokenizer(), classes, trial.max_seq_length, "test")
    return predict_probabilities(model, eval_loader(split, trial.batch_size))


def _compete_with_ensemble(
    best: dict[str, Any],
    results: Sequence[dict[str, Any]],
    single: np.ndarray,
    test: pd.DataFrame,
    labels: np.ndarray,
    classes: list[str],
    request: FinetuneRequest,
) -> tuple[dict[str, Any] | None, np.ndarray, list[dict[str, Any]]]:
    """The ensemble of the top trials against ``best`` alone (when the contract asks for one
    and two trials finished): the summary, the winner's probabilities and its members."""
    chosen = ensemble.members(results, request.ensemble_top_k)
    others = [m for m in chosen if m["index"] != best["index"]][: request.ensemble_top_k - 1]
    if not chosen or not others:
        return None, single, [best]

    def probabilities_of(member: dict[str, Any]) -> np.ndarray:
        model = load_trained(Path(member["checkpoint"]))
        return _test_probabilities(model, member["config"], test, classes)

    summary, winner = ensemble.compete(
        best, others, single, probabilities_of, labels, classes, request.promotion_margin
    )
    return summary, winner, [best, *others] if summary["chosen"] else [best]


def evaluate_and_register(
    best: dict[str, Any],
    parent: dict[str, Any],
    request: FinetuneRequest,
    context: RunContext,
    results: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Evaluate the best trial on the frozen test split (and the ensemble of the top trials
    against it, when the contract asks for one), log the winner, register it, and move the
    champion alias only if it beats the champion on that same split by the margin."""
    snapshot_path = Path(parent["snapshot"])
    client = tracking.connect(context.tracking_uri)
    run_id = parent["parent_run_id"]
    model = load_trained(Path(best["checkpoint"]))
    classes = list(model.hparams["classes"])
    test = _test_split(snapshot_path)
    labels = pd.Index(classes).get_indexer(test[F.LABEL])
    single = _test_probabilities(model, best["config"], test, classes)
    competition, probabilities, model_members = _compete_with_ensemble(
        best, results, single, test, labels, classes, request
    )
    if competition is not None:
        ensemble.log_competition(client, run_id, competition)
    client.set_tag(run_id, tracking.TAG_MODEL_MEMBERS, ensemble.member_tag(model_members))
    scores = evaluate_predictions(labels, probabilities, classes)
    metrics = _log_evaluation(client, run_id, best, scores, classes)
    outcome = {
        "run_id": run_id,
        "version": parent["version"],
        "metrics": metrics,
        "samples_per_second": best.get("samples_per_second"),
        "best_trial": {"index": best["index"], "config": best["config"]},
        "ensemble": competition,
    }
    if request.search == BAYESIAN:
        outcome["search"] = bayesian.log_study(client, run_id, search_settings(request, context))
    if request.dry_run:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        return {**outcome, "registered": None, "promoted": False, "reason": "dry run"}
    examples = test[F.TEXT].head(3).tolist()
    checkpoints = [Path(member["checkpoint"]) for member in model_members]
    max_seq_length = TrialConfig(**best["config"]).max_seq_length
    model_uri = serving.log_classifier(
        client, run_id, checkpoints, classes, max_seq_length, examples
    )

    def score_on_this_split(uri: str) -> float:
        probabilities = _probabilities_of(uri, test[F.TEXT])
        return evaluate_predictions(labels, probabilities, classes)["macro_f1"]

    outcome |= _register_and_promote(
        client, request, run_id, model_uri, scores["macro_f1"], score_on_this_split
    )
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    governance_metrics.emit(governance_metrics.training_figures(request.dataset, outcome))
    return outcome

"""A Bayesian trial's part in a fine-tune run: the settings it asks its study for, the tags of
its MLflow run, and the study's artifacts on the parent run when the search ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient

from governance import tracking
from governance.contract_finetune import SearchKind
from governance.finetune import search
from governance.finetune.training import VAL_METRIC

BAYESIAN: SearchKind = "bayesian"
SEARCH_TAG, STATE_TAG, NUMBER_TAG = "governance.search", "optuna.state", "optuna.trial_number"


@dataclass
class SearchedTrial:
    """A Bayesian trial's hold on its study: the settings it was given, its pruning callback."""

    study: Any
    proposal: search.Proposal
    config: dict[str, Any]
    pruning: search.OptunaPruning

    @classmethod
    def open(cls, trial: dict[str, Any], storage: str) -> SearchedTrial:
        settings = search.SearchSettings.from_shared(trial["search"], storage)
        index = int(trial["index"])
        study = search.load_study(settings, index)
        proposal = search.propose(study, index, settings.search_space())
        pruning = search.OptunaPruning(proposal.trial, VAL_METRIC, settings)
        return cls(study, proposal, proposal.configure(trial["config"]), pruning)

    def tell(self, value: float) -> str:
        return search.tell(self.study, self.proposal, value, self.pruning.pruned)


def trial_tags(searched: SearchedTrial | None) -> dict[str, str]:
    """The trial run's tags: which Optuna trial it is and its state (none for a grid trial)."""
    if searched is None:
        return {}
    return {
        SEARCH_TAG: BAYESIAN,
        NUMBER_TAG: str(searched.proposal.number),
        STATE_TAG: searched.proposal.state,
    }


def log_study(client: MlflowClient, run_id: str, settings: search.SearchSettings) -> dict[str, Any]:
    """The study's trials, history plot and parameter importances as artifacts of the parent
    run, its counts as metrics; returns the summary."""
    study = search.load_study(settings)
    closed = search.close(study)
    rows = search.trial_rows(study)
    found = search.importances(study)
    states = [row["state"] for row in rows]
    summary: dict[str, Any] = {
        "study": settings.study,
        "trials": len(rows),
        "complete": states.count(search.COMPLETE),
        "pruned": states.count(search.PRUNED),
        "failed": states.count(search.FAILED),
        "closed_as_failed": closed,
        "importances": found,
    }
    client.log_dict(run_id, {**summary, "trial_rows": rows}, "search/study.json")
    title = f"Bayesian search {settings.study}"
    tracking.log_bytes(
        client, run_id, search.history_png(rows, title), "search/optimization_history.png"
    )
    if found:
        png = search.importances_png(found, title)
        tracking.log_bytes(client, run_id, png, "search/param_importances.png")
    for key in ("trials", "complete", "pruned", "failed"):
        client.log_metric(run_id, f"search_trials_{key}", float(summary[key]))
    client.set_tag(run_id, SEARCH_TAG, BAYESIAN)
    return summary

"""An ensemble of a run's best trials: the mean of their class probabilities.

It competes with the best single trial on the frozen test split and replaces it as the run's
model only when it beats it by the promotion margin; the champion gate then judges whichever
won. The served model runs every member (``governance.tracking.serving``), and the run records
each member's trial run for lineage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlflow import MlflowClient

from governance.finetune.evaluation import average_probabilities, evaluate_predictions
from governance.finetune.search import COMPLETE

ENSEMBLE_TAG = "governance.ensemble"


def members(results: Sequence[dict[str, Any]], top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` finished trials by validation macro-F1 (the lower index first on a tie);
    none when the contract asks for no ensemble or fewer than two trials finished."""
    if top_k < 2:
        return []
    finished = [r for r in results if r.get("state", COMPLETE) == COMPLETE]
    ranked = sorted(finished, key=lambda r: (-r["val_macro_f1"], r["index"]))
    return ranked[:top_k] if len(ranked) >= 2 else []


@dataclass(frozen=True)
class Verdict:
    chosen: bool
    reason: str


def judge(ensemble_f1: float, single_f1: float, margin: float) -> Verdict:
    """The ensemble replaces the best single trial only if it beats it by more than ``margin``."""
    figures = f"test macro-F1 {ensemble_f1:.4f} vs the best single trial's {single_f1:.4f}"
    if ensemble_f1 > single_f1 + margin:
        return Verdict(True, f"{figures}: better by more than the margin {margin}")
    return Verdict(False, f"{figures}: not better by more than the margin {margin}")


def compete(
    best: dict[str, Any],
    others: list[dict[str, Any]],
    single: np.ndarray,
    probabilities_of: Callable[[dict[str, Any]], np.ndarray],
    labels: np.ndarray,
    classes: list[str],
    margin: float,
) -> tuple[dict[str, Any], np.ndarray]:
    """Score the mean of the test probabilities of ``best`` (``single``) and ``others`` against
    ``best`` alone; returns the summary and the winner's probabilities."""
    combined = average_probabilities([single, *(probabilities_of(member) for member in others)])
    single_f1 = evaluate_predictions(labels, single, classes)["macro_f1"]
    ensemble_f1 = evaluate_predictions(labels, combined, classes)["macro_f1"]
    verdict = judge(ensemble_f1, single_f1, margin)
    summary = {
        "members": [
            {"index": m["index"], "run_id": m["run_id"], "val_macro_f1": m["val_macro_f1"]}
            for m in (best, *others)
        ],
        "test_macro_f1": ensemble_f1,
        "best_single_test_macro_f1": single_f1,
        "chosen": verdict.chosen,
        "reason": verdict.reason,
    }
    return summary, combined if verdict.chosen else single


def log_competition(client: MlflowClient, run_id: str, summary: dict[str, Any]) -> None:
    client.log_dict(run_id, summary, "evaluation/ensemble.json")
    client.log_metric(run_id, "ensemble_test_macro_f1", float(summary["test_macro_f1"]))
    client.log_metric(
        run_id, "best_single_test_macro_f1", float(summary["best_single_test_macro_f1"])
    )
    client.log_metric(run_id, "ensemble_size", float(len(summary["members"])))
    client.set_tag(run_id, ENSEMBLE_TAG, "chosen" if summary["chosen"] else "not chosen")


def member_tag(model_members: Sequence[dict[str, Any]]) -> str:
    """What the run's model is made of: each member's trial index and MLflow run."""
    return json.dumps([{"trial": m["index"], "run_id": m["run_id"]} for m in model_members])

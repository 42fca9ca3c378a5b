"""Consensus labels and annotator reliability from several votes per item.

The majority vote is what a reviewer can check by eye, so it is the consensus wherever one label
holds more than half of an item's votes; Dawid-Skene (crowd-kit) weighs each annotator by their
estimated confusion matrix and decides the rest, and gives every item a confidence. An annotator's
quality is their accuracy against that consensus; the Dawid-Skene matrices show *how* they err.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene

from governance import frames as F
from governance.errors import InvalidInputError
from governance.ingest import majority_labels

DS_ITERATIONS = 100
DS_TOLERANCE = 1e-6
CONSENSUS_COLUMNS = [
    F.ITEM_ID,
    F.LABEL,
    "consensus_label",
    "method",
    "confidence",
    "majority_label",
    "ds_label",
    "n_votes",
]
QUALITY_COLUMNS = ["annotator", "n_items", "accuracy", "ds_accuracy", "flagged", "reason"]
CONFUSION_COLUMNS = ["annotator", "true_label", "given_label", "probability"]

_Fitted = TypeVar("_Fitted")


@dataclass(frozen=True)
class ConsensusResult:
    """Per item consensus, per annotator quality and confusion, and their summary figures."""

    consensus: pd.DataFrame
    quality: pd.DataFrame
    confusion: pd.DataFrame
    summary: dict[str, Any]


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def given_consensus(items: pd.DataFrame) -> pd.DataFrame:
    """Single-label datasets: the given label is all there is."""
    frame = pd.DataFrame(
        {
            F.ITEM_ID: items[F.ITEM_ID].to_numpy(),
            F.LABEL: items[F.LABEL].to_numpy(),
            "consensus_label": items[F.LABEL].to_numpy(),
            "method": "given",
            "confidence": np.nan,
            "majority_label": None,
            "ds_label": None,
            "n_votes": 1,
        }
    )
    return frame[CONSENSUS_COLUMNS]


def dawid_skene(annotations: pd.DataFrame) -> DawidSkene:
    """Fit Dawid-Skene on the votes (crowd-kit's column names: task, worker, label)."""
    votes = annotations.rename(columns={F.ITEM_ID: "task", F.ANNOTATOR: "worker"})
    model = DawidSkene(n_iter=DS_ITERATIONS, tol=DS_TOLERANCE)
    return model.fit(votes[["task", "worker", F.LABEL]])


def fitted(value: _Fitted | None, name: str) -> _Fitted:
    """One of a Dawid-Skene model's results, which are None until the model is fitted."""
    if value is None:
        raise InvalidInputError(f"Dawid-Skene model: {name} is not set, fit the model first")
    return value


def confusion_table(model: DawidSkene, classes: list[str]) -> pd.DataFrame:
    """P(given label | true label) per annotator, one row per (annotator, true, given)."""
    errors = fitted(model.errors_, "errors_").reindex(columns=classes, fill_value=0.0)
    # one column level, so stack gives a Series (the stubs allow a DataFrame too)
    stacked = cast(pd.Series, errors.rename_axis(columns="true_label").stack())
    long = stacked.rename("probability").reset_index()
    long = long.rename(columns={"worker": "annotator", F.LABEL: "given_label"})
    annotators = sorted(long["annotator"].unique())
    grid = pd.MultiIndex.from_product(
        [annotators, classes, classes], names=["annotator", "true_label", "given_label"]
    )
    table = long.set_index(["annotator", "true_label", "given_label"])["probability"]
    return table.reindex(grid, fill_value=0.0).reset_index()[CONFUSION_COLUMNS]


def estimated_accuracy(confusion: pd.DataFrame, priors: pd.Series) -> pd.Series:
    """Each annotator's chance of giving the true label, weighted by the class priors."""
    hits = confusion[confusion["true_label"] == confusion["given_label"]]
    weights = hits["true_label"].map(priors).fillna(0.0)
    return (hits["probability"] * weights).groupby(hits["annotator"]).sum()


def annotator_quality(
    annotations: pd.DataFrame,
    consensus: pd.Series,
    ds_accuracy: pd.Series,
    min_accuracy: float,
    min_items: int,
) -> pd.DataFrame:
    """Accuracy against the consensus; flag those below ``min_accuracy`` on enough items."""
    agrees = annotations[F.LABEL].to_numpy() == annotations[F.ITEM_ID].map(consensus).to_numpy()
    grouped = pd.Series(agrees, index=annotations.index).groupby(annotations[F.ANNOTATOR])
    table = pd.DataFrame({"n_items": grouped.size(), "accuracy": grouped.mean()})
    table.index.name = "annotator"
    table = table.reset_index().sort_values("annotator", kind="stable")
    table["ds_accuracy"] = table["annotator"].map(ds_accuracy).astype(float)
    table["flagged"] = (table["accuracy"] < min_accuracy) & (table["n_items"] >= min_items)
    table["reason"] = [
        f"accuracy {acc:.2f} < {min_accuracy:.2f} on {n} items" if flagged else ""
        for acc, n, flagged in table[["accuracy", "n_items", "flagged"]].itertuples(index=False)
    ]
    table["n_items"] = table["n_items"].astype(int)
    table["accuracy"] = table["accuracy"].astype(float)
    return table[QUALITY_COLUMNS].reset_index(drop=True)


def build_consensus(
    items: pd.DataFrame,
    annotations: pd.DataFrame,
    classes: list[str],
    min_accuracy: float = 0.7,
    min_items: int = 20,
) -> ConsensusResult:
    """Consensus of the items' votes; items without votes keep their given label."""
    if annotations.empty:
        return ConsensusResult(
            given_consensus(items),
            empty_frame(QUALITY_COLUMNS),
            empty_frame(CONFUSION_COLUMNS),
            {},
        )
    annotations = annotations[annotations[F.ITEM_ID].isin(items[F.ITEM_ID])]
    model = dawid_skene(annotations)
    probas = fitted(model.probas_, "probas_").reindex(columns=classes, fill_value=0.0)
    majority = majority_labels(annotations)
    item_ids = items[F.ITEM_ID]
    ds_label = item_ids.map(fitted(model.labels_, "labels_"))
    majority_label = item_ids.map(majority)
    has_majority = majority_label.notna().to_numpy()
    consensus_label = majority_label.where(has_majority, ds_label)
    item_probas = probas.reindex(item_ids.to_numpy())
    columns = pd.Index(classes).get_indexer(pd.Index(consensus_label.fillna("")))
    confidence = np.where(
        columns >= 0,
        item_probas.to_numpy()[np.arange(len(items)), np.maximum(columns, 0)],
        np.nan,
    )
    consensus = pd.DataFrame(
        {
            F.ITEM_ID: item_ids.to_numpy(),
            F.LABEL: items[F.LABEL].to_numpy(),
            "consensus_label": consensus_label.to_numpy(),
            "method": np.where(has_majority, "majority", "dawid_skene"),
            "confidence": confidence,
            "majority_label": majority_label.to_numpy(),
            "ds_label": ds_label.to_numpy(),
            "n_votes": item_ids.map(annotations[F.ITEM_ID].value_counts()).fillna(0).astype(int),
        }
    )[CONSENSUS_COLUMNS]
    confusion = confusion_table(model, classes)
    priors = fitted(model.priors_, "priors_").reindex(classes, fill_value=0.0)
    quality = annotator_quality(
        annotations,
        consensus.set_index(F.ITEM_ID)["consensus_label"],
        estimated_accuracy(confusion, priors),
        min_accuracy,
        min_items,
    )
    return ConsensusResult(consensus, quality, confusion, _summary(consensus, has_majority))


def _summary(consensus: pd.DataFrame, has_majority: np.ndarray) -> dict[str, Any]:
    """The figures the manifest and the report show."""
    labelled = consensus[F.LABEL].notna()
    confidence = consensus["confidence"].to_numpy(dtype=float)
    return {
        "items": len(consensus),
        "majority_items": int(has_majority.sum()),
        "dawid_skene_items": int((~has_majority).sum()),
        "disagrees_with_label": int(
            (labelled & (consensus[F.LABEL] != consensus["consensus_label"])).sum()
        ),
        "mean_confidence": float(np.nanmean(confidence)) if len(confidence) else None,
    }

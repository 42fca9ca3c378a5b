"""Consensus labels and annotator reliability from several votes per item.

The contract's ``audit.consensus`` names the aggregator; ``auto`` lets the night's votes choose
(``selection``): plurality unless a model's labels predict held-out votes better by a standard
error, and the simplest model that does. Every
item also carries its plurality label, so a reviewer sees item by item what a model changed. The
fit may include the votes of earlier published versions (``history``): one night often gives a
worker too few votes to estimate their reliability. An annotator's quality is their accuracy
against the consensus with a Wilson interval; only an interval wholly below the threshold flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from governance import frames as F
from governance.audit.aggregators import AggregatorName, Votes, aggregate, plurality_labels
from governance.audit.selection import Selection, select_aggregator
from governance.contracts import AuditSpec

# The models ``auto`` weighs against plurality: fast enough to refit on every fold of a night.
# GLAD and M-MSR take seconds a fit, and M-MSR fails on sparse folds; name them to use them.
AUTO_CANDIDATES: tuple[AggregatorName, ...] = ("plurality", "wawa", "one_coin", "dawid_skene")
# Every item's confidence is the one-coin Dawid-Skene posterior of its consensus label, whichever
# aggregator chose it: one accuracy per worker is few enough parameters to estimate well, and on
# the generated crowds its probabilities are calibrated where vote shares are not
# (governance.demo.aggregation.measure_calibration; bench/bench_aggregation.py prints both).
CONFIDENCE_MODEL: AggregatorName = "one_coin"
CONSENSUS_COLUMNS = [
    F.ITEM_ID,
    F.LABEL,
    "consensus_label",
    "method",
    "confidence",
    "plurality_label",
    "plurality_share",
    "n_votes",
]
QUALITY_COLUMNS = [
    "annotator",
    "n_items",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "assessment",
    "flagged",
    "reason",
]
CONFUSION_COLUMNS = ["annotator", "true_label", "given_label", "probability"]
HISTORY_PREFIX = "earlier:"


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
            "plurality_label": None,
            "plurality_share": np.nan,
            "n_votes": 1,
        }
    )
    return frame[CONSENSUS_COLUMNS]


def with_history(
    annotations: pd.DataFrame, history: pd.DataFrame | None, classes: list[str]
) -> pd.DataFrame:
    """Tonight's votes, then earlier versions' votes (of classes still declared) under item ids
    that cannot collide with tonight's."""
    if history is None or history.empty:
        return annotations[[F.ITEM_ID, F.ANNOTATOR, F.LABEL]]
    earlier = history.loc[history[F.LABEL].isin(classes), [F.ITEM_ID, F.ANNOTATOR, F.LABEL]]
    earlier = earlier.assign(**{F.ITEM_ID: HISTORY_PREFIX + earlier[F.ITEM_ID].astype(str)})
    return pd.concat([annotations[[F.ITEM_ID, F.ANNOTATOR, F.LABEL]], earlier], ignore_index=True)


def choose(votes: Votes, spec: AuditSpec) -> tuple[AggregatorName, Selection | None]:
    """The named aggregator, or ``auto``'s choice and the figures it compared."""
    if spec.consensus != "auto":
        return spec.consensus, None
    selection = select_aggregator(votes, AUTO_CANDIDATES, seed=spec.seed)
    return selection.chosen, selection


def wilson_interval(hits: np.ndarray, totals: np.ndarray, confidence: float):
    """Wilson score interval of each proportion (statsmodels)."""
    return proportion_confint(hits, totals, alpha=1 - confidence, method="wilson")


def annotator_quality(
    annotations: pd.DataFrame, consensus: pd.Series, spec: AuditSpec
) -> pd.DataFrame:
    """Accuracy against the consensus with its interval. Unreliable: the whole interval lies
    below ``min_accuracy`` on at least ``min_items`` items; not enough data: the interval
    straddles it."""
    agrees = annotations[F.LABEL].to_numpy() == annotations[F.ITEM_ID].map(consensus).to_numpy()
    grouped = pd.Series(agrees, index=annotations.index).groupby(annotations[F.ANNOTATOR])
    table = pd.DataFrame({"n_items": grouped.size(), "hits": grouped.sum()})
    table.index.name = "annotator"
    table = table.reset_index().sort_values("annotator", kind="stable").reset_index(drop=True)
    n_items = table["n_items"].to_numpy(dtype=int)
    hits = table["hits"].to_numpy(dtype=float)
    low, high = wilson_interval(hits, n_items, spec.interval_confidence)
    table["n_items"] = n_items
    table["accuracy"] = hits / n_items
    table["accuracy_low"], table["accuracy_high"] = np.asarray(low), np.asarray(high)
    below = table["accuracy_high"] < spec.min_annotator_accuracy
    above = table["accuracy_low"] >= spec.min_annotator_accuracy
    table["flagged"] = below & (table["n_items"] >= spec.min_annotator_items)
    table["assessment"] = np.select(
        [table["flagged"], above], ["unreliable", "reliable"], "not enough data"
    )
    table["reason"] = [
        f"accuracy {acc:.2f} (interval {lo:.2f}-{hi:.2f}) < {spec.min_annotator_accuracy:.2f} "
        f"on {n} items"
        if flagged
        else ""
        for acc, lo, hi, n, flagged in table[
            ["accuracy", "accuracy_low", "accuracy_high", "n_items", "flagged"]
        ].itertuples(index=False)
    ]
    return table[QUALITY_COLUMNS]


def confusion_table(annotations: pd.DataFrame, consensus: pd.Series, classes: list[str]):
    """P(given label | consensus label) per annotator, counted: one row per (annotator,
    consensus, given); a consensus class the annotator never met has probability 0."""
    frame = pd.DataFrame(
        {
            "annotator": annotations[F.ANNOTATOR].to_numpy(),
            "true_label": annotations[F.ITEM_ID].map(consensus).to_numpy(),
            "given_label": annotations[F.LABEL].to_numpy(),
        }
    )
    counts = frame.groupby(["annotator", "true_label", "given_label"]).size()
    annotators = sorted(frame["annotator"].unique())
    grid = pd.MultiIndex.from_product(
        [annotators, classes, classes], names=["annotator", "true_label", "given_label"]
    )
    filled = counts.reindex(grid, fill_value=0).astype(float)
    totals = filled.groupby(level=["annotator", "true_label"]).transform("sum")
    probability = (filled / totals.where(totals > 0)).fillna(0.0)
    return probability.rename("probability").reset_index()[CONFUSION_COLUMNS]


def build_consensus(
    items: pd.DataFrame,
    annotations: pd.DataFrame,
    classes: list[str],
    spec: AuditSpec | None = None,
    history: pd.DataFrame | None = None,
) -> ConsensusResult:
    """Consensus of the items' votes; items without votes keep their given label."""
    spec = spec or AuditSpec()
    annotations = annotations[annotations[F.ITEM_ID].isin(items[F.ITEM_ID])]
    if annotations.empty:
        return ConsensusResult(
            given_consensus(items),
            empty_frame(QUALITY_COLUMNS),
            empty_frame(CONFUSION_COLUMNS),
            {},
        )
    fitted = with_history(annotations, history, classes)
    votes = Votes.of(fitted, classes)
    name, selection = choose(votes, spec)
    chosen_fit = aggregate(name, votes)
    decided = chosen_fit.labels
    belief = (chosen_fit if name == CONFIDENCE_MODEL else aggregate(CONFIDENCE_MODEL, votes)).probas
    counts = votes.counts()
    position = votes.items.get_indexer(pd.Index(items[F.ITEM_ID].astype(str)))
    voted = position >= 0
    row = np.maximum(position, 0)
    chosen = decided[row]
    plural = plurality_labels(counts)[row]
    n_votes = counts.sum(axis=1)[row]
    names = np.asarray(classes, dtype=object)
    consensus = pd.DataFrame(
        {
            F.ITEM_ID: items[F.ITEM_ID].to_numpy(),
            F.LABEL: items[F.LABEL].to_numpy(),
            "consensus_label": np.where(voted, names[chosen], items[F.LABEL].to_numpy()),
            "method": np.where(voted, name, "given"),
            "confidence": np.where(voted, belief[row, chosen], np.nan),
            "plurality_label": np.where(voted, names[plural], None),
            "plurality_share": np.where(
                voted, counts[row, plural] / np.maximum(n_votes, 1), np.nan
            ),
            "n_votes": np.where(voted, n_votes, 0).astype(int),
        }
    )[CONSENSUS_COLUMNS]
    labels = consensus.set_index(F.ITEM_ID)["consensus_label"]
    no_majority = voted & (counts[row].max(axis=1) * 2 <= n_votes)
    earlier = len(fitted) - len(annotations)
    summary = _summary(consensus, name, spec, selection, votes, earlier, no_majority)
    return ConsensusResult(
        consensus,
        annotator_quality(annotations, labels, spec),
        confusion_table(annotations, labels, classes),
        summary,
    )


def _summary(
    consensus: pd.DataFrame,
    name: AggregatorName,
    spec: AuditSpec,
    selection: Selection | None,
    votes: Votes,
    earlier_votes: int,
    no_majority: np.ndarray,
) -> dict[str, Any]:
    """The figures the manifest and the report show."""
    labelled = consensus[F.LABEL].notna()
    confidence = consensus["confidence"].to_numpy(dtype=float)
    voted = consensus["method"] != "given"
    changed = voted & (consensus["consensus_label"] != consensus["plurality_label"])
    return {
        "items": len(consensus),
        "requested": spec.consensus,
        "aggregator": name,
        "reason": selection.reason if selection else f"named by the contract ({name})",
        "candidates": [vars(score) for score in selection.scores] if selection else [],
        "folds": selection.folds if selection else 0,
        "scored_votes": selection.scored_votes if selection else 0,
        "fitted_votes": len(votes.item),
        "earlier_votes": earlier_votes,
        "no_majority_items": int(no_majority.sum()),
        "changed_from_plurality": int(changed.sum()),
        "disagrees_with_label": int(
            (labelled & (consensus[F.LABEL] != consensus["consensus_label"])).sum()
        ),
        "mean_confidence": float(np.nanmean(confidence)) if np.isfinite(confidence).any() else None,
    }

"""How often each aggregator, and ``auto``, finds the truth of generated crowds.

A regime's accuracy is the mean over several crowds drawn from it (one per seed): a single
crowd of a few hundred items moves by a point between draws, more than the differences between
good aggregators, so one draw would rank them by luck.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from governance.audit.aggregators import AGGREGATORS, AggregatorName, Votes, aggregate
from governance.audit.consensus import AUTO_CANDIDATES, CONFIDENCE_MODEL
from governance.audit.selection import select_aggregator
from governance.demo.consensus_check import calibration_error, reliability_table
from governance.demo.crowd import CrowdRegime, generate_crowd


@dataclass(frozen=True)
class RegimeAccuracy:
    """Mean accuracy (in points) of each aggregator and of ``auto`` on one regime."""

    regime: CrowdRegime
    seeds: int
    accuracy: dict[str, float]
    chosen: dict[str, int] = field(default_factory=dict)
    no_majority_share: float = 0.0

    @property
    def best(self) -> float:
        return max(value for name, value in self.accuracy.items() if name != "auto")

    @property
    def auto_gap(self) -> float:
        """Points ``auto`` is behind the best aggregator (negative when ahead)."""
        return self.best - self.accuracy["auto"]


def measure_regime(
    regime: CrowdRegime, seeds: int, aggregators: tuple[AggregatorName, ...] = AGGREGATORS
) -> RegimeAccuracy:
    """Every aggregator's and ``auto``'s mean accuracy over ``seeds`` crowds of ``regime``."""
    totals: dict[str, float] = dict.fromkeys([*aggregators, "auto"], 0.0)
    chosen: dict[str, int] = {}
    no_majority = 0.0
    for seed in range(seeds):
        crowd = generate_crowd(regime, seed)
        votes = Votes.of(crowd.votes, crowd.classes)
        truth = pd.Index(crowd.classes).get_indexer(pd.Index(crowd.truth.reindex(votes.items)))
        correct: dict[str, float] = {}
        for name in aggregators:
            correct[name] = float((aggregate(name, votes).labels == truth).mean())
        selection = select_aggregator(votes, AUTO_CANDIDATES)
        correct["auto"] = (
            correct[selection.chosen]
            if selection.chosen in correct
            else float((aggregate(selection.chosen, votes).labels == truth).mean())
        )
        chosen[selection.chosen] = chosen.get(selection.chosen, 0) + 1
        for key, value in correct.items():
            totals[key] += value
        counts = votes.counts()
        no_majority += float((counts.max(axis=1) * 2 <= counts.sum(axis=1)).mean())
    accuracy = {name: 100 * total / seeds for name, total in totals.items()}
    return RegimeAccuracy(regime, seeds, accuracy, chosen, 100 * no_majority / seeds)


@dataclass(frozen=True)
class Calibration:
    """Expected calibration errors, against the truth, of two confidences in ``auto``'s labels
    on one crowd: the one-coin posterior the audit publishes, and the vote share."""

    regime: CrowdRegime
    posterior: float
    vote_share: float


def measure_calibration(regime: CrowdRegime, seed: int = 0) -> Calibration:
    crowd = generate_crowd(regime, seed)
    votes = Votes.of(crowd.votes, crowd.classes)
    truth = pd.Index(crowd.classes).get_indexer(pd.Index(crowd.truth.reindex(votes.items)))
    labels = aggregate(select_aggregator(votes, AUTO_CANDIDATES).chosen, votes).labels
    right = labels == truth
    rows = np.arange(len(labels))

    def error(confidence: np.ndarray) -> float:
        return calibration_error(reliability_table(confidence, right))

    return Calibration(
        regime,
        error(aggregate(CONFIDENCE_MODEL, votes).probas[rows, labels]),
        error(aggregate("plurality", votes).probas[rows, labels]),
    )

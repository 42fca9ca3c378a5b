"""``auto``: which aggregator to trust on a night's votes, decided without gold labels.

Each item's votes are dealt into ``folds`` folds. Every candidate is fitted on all folds but one
and its labels are judged by how well they predict the held-out votes: each worker's confusion
matrix is estimated from their training votes against the candidate's labels (shrunk towards the
crowd's pooled confusion, so a worker with two votes borrows from everyone), and a held-out vote
scores the log-probability that matrix gives it. The same observation model judges every
candidate, so the score compares labels, not models: labels closer to the truth make every
reliable worker's votes more predictable. A worker never has a held-out vote on an item that
trained the labels they are judged by.

The choice follows the one-standard-error rule (Breiman et al., 1984; Hastie, Tibshirani and
Friedman, section 7.10): candidates are ordered from the simplest (plurality, then Wawa, one-coin
and full Dawid-Skene) and the first whose score is within one standard error of the best one's
is chosen, the error being that of the per-item paired difference. A model is adopted only where
the votes show it helps, and a richer model only where it helps beyond a simpler one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from governance.audit.aggregators import AggregatorName, Votes, aggregate

SHRINKAGE = 2.0
# Ten folds: each fit sees nine tenths of every item's votes, close to what the final fit sees.
FOLDS = 10


@dataclass(frozen=True)
class CandidateScore:
    """One aggregator's held-out score and its paired difference to plurality."""

    name: AggregatorName
    log_likelihood: float
    gain: float
    standard_error: float


@dataclass(frozen=True)
class Selection:
    chosen: AggregatorName
    reason: str
    scores: list[CandidateScore]
    folds: int
    scored_votes: int


def deal_folds(votes: Votes, folds: int, seed: int) -> np.ndarray:
    """Each item's votes in a random order, dealt round-robin: every item with two or more
    votes keeps training votes in every fold."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(votes.item))
    order = order[np.argsort(votes.item[order], kind="stable")]
    item = votes.item[order]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    rank = np.arange(len(item)) - np.repeat(starts, np.diff(np.r_[starts, len(item)]))
    offset = rng.integers(folds, size=len(votes.items))[item]
    dealt = np.empty(len(item), dtype=int)
    dealt[order] = (rank + offset) % folds
    return dealt


def worker_confusion(train: Votes, labels: np.ndarray) -> np.ndarray:
    """P(vote | label) per worker, [worker, label, vote], counted on ``train`` against
    ``labels`` and shrunk towards the crowd's pooled confusion."""
    k = len(train.classes)
    pooled = np.ones((k, k))
    np.add.at(pooled, (labels[train.item], train.label), 1.0)
    pooled /= pooled.sum(axis=1, keepdims=True)
    per_worker = np.zeros((len(train.workers), k, k))
    np.add.at(per_worker, (train.worker, labels[train.item], train.label), 1.0)
    return (per_worker + SHRINKAGE * pooled) / (per_worker.sum(axis=2, keepdims=True) + SHRINKAGE)


def held_out_scores(train: Votes, held: Votes, labels: np.ndarray) -> np.ndarray:
    """Log-probability of each held-out vote given ``labels`` (fitted on ``train``)."""
    confusion = worker_confusion(train, labels)
    return np.log(confusion[held.worker, labels[held.item], held.label])


@dataclass(frozen=True)
class FoldFit:
    """One fold: its training and held-out votes and each candidate's labels from the training."""

    train: Votes
    held: Votes
    labels: dict[AggregatorName, np.ndarray]


def fold_fits(votes: Votes, names: list[AggregatorName], folds: int, seed: int) -> list[FoldFit]:
    """Each candidate fitted on every fold's training votes; items with a single vote are never
    held out (nothing would be left to label them)."""
    dealt = deal_folds(votes, folds, seed)
    trained = np.bincount(votes.item, minlength=len(votes.items)) >= 2
    fits = []
    for fold in range(folds):
        train = votes.subset(dealt != fold)
        held = votes.subset((dealt == fold) & trained[votes.item])
        fits.append(FoldFit(train, held, {name: aggregate(name, train).labels for name in names}))
    return fits


def select_aggregator(
    votes: Votes,
    candidates: tuple[AggregatorName, ...],
    folds: int = FOLDS,
    seed: int = 0,
    margin: float = 1.0,
) -> Selection:
    """The simplest candidate whose labels predict held-out votes about as well as the best
    one's (plurality is always a candidate)."""
    names: list[AggregatorName] = ["plurality", *[c for c in candidates if c != "plurality"]]
    fits = fold_fits(votes, names, folds, seed)
    per_item: dict[AggregatorName, np.ndarray] = {
        name: np.zeros(len(votes.items)) for name in names
    }
    for fit in fits:
        for name, labels in fit.labels.items():
            np.add.at(per_item[name], fit.held.item, held_out_scores(fit.train, fit.held, labels))
    scored = sum(len(fit.held.item) for fit in fits)
    chosen, reason, scores = _decide(per_item, scored, margin)
    return Selection(chosen, reason, scores, folds, scored)


def _paired_error(difference: np.ndarray, scored: int) -> float:
    """Standard error of a mean-per-vote difference summed item by item."""
    if len(difference) < 2:
        return 0.0
    return float(difference.std(ddof=1) * np.sqrt(len(difference)) / max(scored, 1))


def _decide(
    per_item: dict[AggregatorName, np.ndarray], scored: int, margin: float
) -> tuple[AggregatorName, str, list[CandidateScore]]:
    """The one-standard-error rule: the simplest candidate (in the order given, plurality
    first) whose score is within ``margin`` standard errors of the best one's."""
    base = per_item["plurality"]
    scores = [
        CandidateScore(
            name,
            float(values.sum() / max(scored, 1)),
            float((values - base).sum() / max(scored, 1)),
            _paired_error(values - base, scored),
        )
        for name, values in per_item.items()
    ]
    best = max(scores, key=lambda score: score.gain)
    for score in scores:
        behind = best.gain - score.gain
        error = _paired_error(per_item[best.name] - per_item[score.name], scored)
        if behind <= margin * error:
            break
    if score.name == "plurality":
        reason = "no aggregator predicts held-out votes better than plurality by a standard error"
    else:
        reason = (
            f"{score.name} predicts held-out votes better than plurality by {score.gain:.4f} "
            f"nats a vote ({score.gain / max(score.standard_error, 1e-12):.1f} standard errors)"
            + ("" if score is best else f"; {best.name}, more complex, is within a standard error")
        )
    return score.name, reason, scores

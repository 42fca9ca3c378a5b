"""Aggregators: from several votes per item to one label and a class distribution per item.

Plurality is the reviewer-checkable floor: the most voted class, a tie going to the tied class
declared first in the contract. The others weigh
workers by an estimated reliability: Dawid-Skene (a confusion matrix per worker), one-coin
Dawid-Skene (one accuracy per worker), GLAD (worker ability and item difficulty) and M-MSR
(worker skill from the covariance of their votes), from crowd-kit; Wawa (plurality weighted by
each worker's agreement with plurality) is written here, crowd-kit's fails on scikit-learn 1.9.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pandas as pd

from governance import frames as F
from governance.contracts import AggregatorName
from governance.errors import InvalidInputError

AGGREGATORS: tuple[AggregatorName, ...] = get_args(AggregatorName)
ITERATIONS = 100
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Votes:
    """Votes as integer codes: items and workers in order of first vote, classes as declared."""

    item: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    items: pd.Index
    workers: pd.Index
    classes: list[str]

    @classmethod
    def of(cls, annotations: pd.DataFrame, classes: list[str]) -> Votes:
        items, item_codes = _codes(annotations[F.ITEM_ID])
        workers, worker_codes = _codes(annotations[F.ANNOTATOR])
        labels = pd.Index(classes).get_indexer(pd.Index(annotations[F.LABEL].astype(str)))
        if (labels < 0).any():
            unknown = sorted(set(annotations[F.LABEL][labels < 0].astype(str)))
            raise ValueError(f"votes with labels outside the classes {classes}: {unknown}")
        return cls(item_codes, worker_codes, labels, items, workers, list(classes))

    def subset(self, mask: np.ndarray) -> Votes:
        """The same items, workers and classes, fewer votes."""
        return Votes(
            self.item[mask],
            self.worker[mask],
            self.label[mask],
            self.items,
            self.workers,
            self.classes,
        )

    def counts(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Votes (or their weights) per item and class."""
        table = np.zeros((len(self.items), len(self.classes)))
        np.add.at(table, (self.item, self.label), 1.0 if weights is None else weights)
        return table

    def frame(self) -> pd.DataFrame:
        """crowd-kit's input: task, worker and label columns."""
        return pd.DataFrame(
            {
                "task": self.items.to_numpy()[self.item],
                "worker": self.workers.to_numpy()[self.worker],
                "label": np.asarray(self.classes, dtype=object)[self.label],
            }
        )


@dataclass(frozen=True)
class Aggregate:
    """An aggregator's class distribution per item (rows: ``Votes.items``) and its labels."""

    name: AggregatorName
    probas: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Class codes, ties going to the class declared first (as in ``plurality_labels``)."""
        return plurality_labels(self.probas)


def _codes(values: pd.Series) -> tuple[pd.Index, np.ndarray]:
    codes, uniques = pd.factorize(values.astype(str), sort=False)
    return pd.Index(uniques), codes


def plurality_labels(counts: np.ndarray) -> np.ndarray:
    """Most voted class per row; a tie goes to the tied class declared first."""
    return counts.argmax(axis=1)


def shares(table: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; a row of zeros (an item left without votes, as in a fold)
    becomes uniform."""
    totals = table.sum(axis=1, keepdims=True)
    uniform = np.full_like(table, 1 / table.shape[1])
    return np.divide(table, totals, out=uniform, where=totals > 0)


def plurality(votes: Votes) -> np.ndarray:
    """Vote shares; ties go to the class declared first."""
    return shares(votes.counts())


def wawa(votes: Votes) -> np.ndarray:
    """Plurality weighted by each worker's agreement with plurality."""
    labels = plurality_labels(votes.counts())
    agrees = (labels[votes.item] == votes.label).astype(float)
    per_worker = np.bincount(votes.worker, agrees, len(votes.workers))
    volume = np.bincount(votes.worker, minlength=len(votes.workers))
    skill = per_worker / np.maximum(volume, 1)
    return shares(votes.counts(skill[votes.worker]))


EPSILON = 1e-10


def dawid_skene_em(votes: Votes, one_coin: bool = False) -> np.ndarray:
    """Dawid-Skene by EM, as crowd-kit fits it (plurality shares to start, its stopping rule on
    the evidence lower bound), vectorised: crowd-kit's pandas version is the reference in tests
    and takes 10-100 times longer, too long to refit on every fold of ``auto``."""
    counts = votes.counts()
    voted = counts.sum(axis=1) > 0
    probas = shares(counts)
    priors = probas[voted].mean(axis=0)
    errors = _confusions(votes, probas, one_coin)
    loss = -np.inf
    for _ in range(ITERATIONS):
        log_errors = np.log(errors[votes.worker, :, votes.label])
        log_priors = np.log(priors.clip(min=EPSILON))
        joint = np.zeros_like(probas)
        np.add.at(joint, votes.item, log_errors)
        joint += log_priors
        probas = np.exp(joint - joint.max(axis=1, keepdims=True))
        probas /= probas.sum(axis=1, keepdims=True)
        priors = probas[voted].mean(axis=0)
        errors = _confusions(votes, probas, one_coin)
        log_errors = np.log(errors[votes.worker, :, votes.label]) + np.log(priors.clip(min=EPSILON))
        expectation = float((probas[votes.item] * log_errors).sum())
        entropy = -float((probas[voted] * np.log(probas[voted].clip(min=EPSILON))).sum())
        new_loss = (expectation + entropy) / len(votes.item)
        if new_loss - loss < TOLERANCE:
            break
        loss = new_loss
    return probas


def _confusions(votes: Votes, probas: np.ndarray, one_coin: bool) -> np.ndarray:
    """P(vote | true class) per worker: [worker, true class, vote]."""
    k = len(votes.classes)
    if one_coin:
        hits = probas[votes.item, votes.label]
        skill = np.bincount(votes.worker, hits, len(votes.workers)) / np.bincount(
            votes.worker, minlength=len(votes.workers)
        ).clip(min=1)
        wrong = (1 - skill) / max(k - 1, 1)
        errors = np.repeat(wrong[:, None, None], k, axis=1).repeat(k, axis=2)
        errors[:, np.arange(k), np.arange(k)] = skill[:, None]
        return errors.clip(EPSILON, 1 - EPSILON)
    # [worker, vote, true class] accumulates each vote's class distribution, then turns around
    errors = np.zeros((len(votes.workers), k, k))
    np.add.at(errors, (votes.worker, votes.label), probas[votes.item])
    errors = errors.transpose(0, 2, 1).clip(min=EPSILON)
    return errors / errors.sum(axis=2, keepdims=True)


def _crowdkit(model_factory: Callable[[], Any]) -> Callable[[Votes], np.ndarray]:
    def fit(votes: Votes) -> np.ndarray:
        data = votes.frame()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = model_factory().fit(data)
                # M-MSR keeps no distribution, only weighted vote scores, computed on request
                scores = (
                    model.predict_score(data) if hasattr(model, "predict_score") else model.probas_
                )
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError) as error:
            raise InvalidInputError(
                f"{type(model_factory()).__name__} cannot be fitted on these {len(data)} votes "
                f"({error}); set the contract's audit.consensus to another aggregator or auto"
            ) from error
        table = scores.reindex(index=votes.items, columns=votes.classes, fill_value=0.0)
        values = np.nan_to_num(table.to_numpy(dtype=float), nan=0.0).clip(min=0.0)
        totals = values.sum(axis=1, keepdims=True)
        return np.divide(values, totals, out=plurality(votes), where=totals > 0)

    return fit


def _dawid_skene() -> Any:
    from crowdkit.aggregation import DawidSkene

    return DawidSkene(n_iter=ITERATIONS, tol=TOLERANCE)


def _one_coin() -> Any:
    from crowdkit.aggregation import OneCoinDawidSkene

    return OneCoinDawidSkene(n_iter=ITERATIONS, tol=TOLERANCE)


def _glad() -> Any:
    from crowdkit.aggregation import GLAD

    return GLAD(n_iter=ITERATIONS, tol=1e-5)


def _mmsr() -> Any:
    from crowdkit.aggregation import MMSR

    return MMSR(random_state=0)


FITTERS: dict[AggregatorName, Callable[[Votes], np.ndarray]] = {
    "plurality": plurality,
    "dawid_skene": dawid_skene_em,
    "one_coin": lambda votes: dawid_skene_em(votes, one_coin=True),
    "glad": _crowdkit(_glad),
    "mmsr": _crowdkit(_mmsr),
    "wawa": wawa,
}


def aggregate(name: AggregatorName, votes: Votes) -> Aggregate:
    """Fit ``name`` on ``votes``."""
    return Aggregate(name, FITTERS[name](votes))

"""Generated crowds whose truth is known: the regimes the consensus aggregators are measured on.

Each regime draws items with a true class and lets a pool of workers vote on them. Workers have
very uneven volumes (weights 1/rank^skew, so a long tail labels fewer than five items each) and
one of four behaviours: good and weak workers are one-coin (right with their accuracy, otherwise
a uniformly wrong class), spammers vote uniformly at random, and class-confused workers swap each
class for one fixed other class with their confusion rate. Everything follows from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance import frames as F


@dataclass(frozen=True)
class CrowdRegime:
    """One kind of crowd: its size, its classes and the mix of its workers."""

    name: str
    classes: int
    items: int
    votes_per_item: int
    workers: int
    volume_skew: float = 1.0
    spammers: float = 0.0
    weak: float = 0.0
    confused: float = 0.0
    good_accuracy: tuple[float, float] = (0.75, 0.95)
    weak_accuracy: tuple[float, float] = (0.35, 0.6)
    confusion_rate: float = 0.7
    class_skew: float = 0.0


REGIMES: tuple[CrowdRegime, ...] = (
    CrowdRegime("3 classes, reliable crowd", 3, 400, 5, 40, good_accuracy=(0.7, 0.95)),
    CrowdRegime("5 classes, long tail", 5, 400, 7, 300, volume_skew=1.2, weak=0.3, class_skew=0.5),
    CrowdRegime("4 classes, many spammers", 4, 400, 5, 60, spammers=0.35, weak=0.1),
    CrowdRegime("4 classes, class-confused", 4, 400, 5, 40, confused=0.3),
    CrowdRegime("10 classes, 3 votes", 10, 400, 3, 50, weak=0.3, volume_skew=0.8),
)


@dataclass(frozen=True)
class Crowd:
    """Votes in the annotations frame's columns, each item's true class and each worker's kind."""

    regime: CrowdRegime
    votes: pd.DataFrame
    truth: pd.Series
    kinds: pd.Series
    classes: list[str]


def worker_kinds(regime: CrowdRegime, rng: np.random.Generator) -> np.ndarray:
    """Each worker's behaviour, in a random order so volume and kind are independent."""
    counts = {
        "spammer": round(regime.spammers * regime.workers),
        "weak": round(regime.weak * regime.workers),
        "confused": round(regime.confused * regime.workers),
    }
    counts["good"] = regime.workers - sum(counts.values())
    kinds = np.concatenate([np.full(count, kind) for kind, count in counts.items()])
    return rng.permutation(kinds)


def derangement(size: int, rng: np.random.Generator) -> np.ndarray:
    """A class map with no fixed point: what a class-confused worker says instead."""
    while True:
        mapping = rng.permutation(size)
        if not (mapping == np.arange(size)).any():
            return mapping


def generate_crowd(regime: CrowdRegime, seed: int = 0) -> Crowd:
    """Votes of ``regime``'s crowd on its items, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    k = regime.classes
    classes = [f"c{n}" for n in range(k)]
    prior = np.exp(-regime.class_skew * np.arange(k))
    truth = rng.choice(k, size=regime.items, p=prior / prior.sum())
    kinds = worker_kinds(regime, rng)
    accuracy = np.where(
        kinds == "weak",
        rng.uniform(*regime.weak_accuracy, regime.workers),
        rng.uniform(*regime.good_accuracy, regime.workers),
    )
    mistakes = np.stack([derangement(k, rng) for _ in range(regime.workers)])
    volume = (np.arange(regime.workers) + 1.0) ** -regime.volume_skew
    volume = rng.permutation(volume / volume.sum())
    rows: list[tuple[str, str, str]] = []
    for item, true in enumerate(truth):
        for worker in rng.choice(regime.workers, regime.votes_per_item, replace=False, p=volume):
            given = _vote(kinds[worker], true, accuracy[worker], mistakes[worker], regime, rng)
            rows.append((f"i{item:05d}", f"w{worker:04d}", classes[given]))
    votes = pd.DataFrame(rows, columns=[F.ITEM_ID, F.ANNOTATOR, F.LABEL])
    item_ids = [f"i{item:05d}" for item in range(regime.items)]
    worker_ids = [f"w{worker:04d}" for worker in range(regime.workers)]
    return Crowd(
        regime,
        votes,
        pd.Series([classes[t] for t in truth], index=item_ids, name="truth"),
        pd.Series(kinds, index=worker_ids, name="kind"),
        classes,
    )


def _vote(
    kind: str,
    true: int,
    accuracy: float,
    mistake: np.ndarray,
    regime: CrowdRegime,
    rng: np.random.Generator,
) -> int:
    k = regime.classes
    if kind == "spammer":
        return int(rng.integers(k))
    if kind == "confused":
        return int(mistake[true]) if rng.random() < regime.confusion_rate else true
    if rng.random() < accuracy:
        return true
    return int((true + rng.integers(1, k)) % k)

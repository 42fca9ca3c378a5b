"""Suspected label errors by confident learning, and the review queue a person works through.

A fast text baseline (TF-IDF + logistic regression) predicts every label out of fold: the model
that scores an item never saw it, so a memorised wrong label cannot vouch for itself. cleanlab's
``find_label_issues`` then flags the items whose given label the out-of-fold probabilities
contradict, and ranks them by self-confidence (the probability of the given label).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline

from governance import frames as F

METHOD = "confident learning (cleanlab find_label_issues, prune_by_noise_rate)"
MODEL = "TF-IDF (hashed word 1-2 grams) + logistic regression"
HASH_FEATURES = 2**20
PARALLEL_FROM_ITEMS = 20_000  # below this, starting worker processes costs more than it saves
QUEUE_COLUMNS = [
    "rank",
    F.ITEM_ID,
    F.TEXT,
    F.SPLIT,
    "given_label",
    "suggested_label",
    "score",
    "given_label_probability",
    "suggested_label_probability",
    "votes",
    "consensus_label",
]


@dataclass(frozen=True)
class LabelErrorResult:
    queue: pd.DataFrame
    summary: dict[str, Any] | None
    skipped: str | None = None


def term_counts(texts: pd.Series):
    """Word 1-2 gram counts, hashed: stateless, so computing them once for every item lets no
    item's text shape another's features (there is no vocabulary to fit)."""
    hasher = HashingVectorizer(
        ngram_range=(1, 2),
        n_features=HASH_FEATURES,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    counts = hasher.transform(texts.astype(str).to_numpy()).tocsc()
    # Columns no text uses carry no signal but would cost the solver on every iteration.
    return counts[:, np.flatnonzero(np.diff(counts.indptr))].tocsr()


def baseline_model(seed: int) -> Pipeline:
    """Cheap, strong on short texts, and deterministic for a seed; its IDF weights are fitted
    inside each fold with the classifier."""
    return make_pipeline(
        TfidfTransformer(sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000, random_state=seed),
    )


def out_of_fold_probabilities(
    texts: pd.Series, labels: np.ndarray, n_classes: int, folds: int, seed: int
) -> np.ndarray:
    """Predicted class probabilities where each item is scored by a model trained without it."""
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    parallel = len(labels) >= PARALLEL_FROM_ITEMS
    probabilities = cross_val_predict(
        baseline_model(seed),
        term_counts(texts),
        labels,
        cv=cv,
        method="predict_proba",
        n_jobs=min(folds, os.cpu_count() or 1) if parallel else None,
    )
    present = np.unique(labels)
    if len(present) == n_classes:
        return probabilities
    full = np.zeros((len(labels), n_classes))
    full[:, present] = probabilities
    return full


def vote_strings(annotations: pd.DataFrame) -> pd.Series:
    """'ann_01:positive, ann_03:negative' per item, for the reviewer to see who said what."""
    if annotations.empty:
        return pd.Series(dtype="str")
    pairs = annotations[F.ANNOTATOR].astype(str) + ":" + annotations[F.LABEL].astype(str)
    return pairs.groupby(annotations[F.ITEM_ID], sort=False).agg(", ".join)


def usable_folds(labels: np.ndarray, folds: int) -> int:
    """As many folds as asked, but no more than the rarest class has members."""
    _, counts = np.unique(labels, return_counts=True)
    return int(min(folds, counts.min())) if len(counts) else 0


def find_suspected_errors(
    items: pd.DataFrame,
    classes: list[str],
    annotations: pd.DataFrame,
    consensus: pd.DataFrame,
    folds: int = 5,
    seed: int = 0,
) -> LabelErrorResult:
    """Rank the labelled items whose given label the out-of-fold baseline contradicts."""
    labelled = items[items[F.LABEL].isin(classes)].reset_index(drop=True)
    labels = pd.Index(classes).get_indexer(pd.Index(labelled[F.LABEL]))
    n_folds = usable_folds(labels, folds)
    if len(np.unique(labels)) < 2 or n_folds < 2:
        reason = "suspected label errors: needs two classes with at least two labelled items each"
        return LabelErrorResult(pd.DataFrame(columns=QUEUE_COLUMNS), None, reason)
    probabilities = out_of_fold_probabilities(labelled[F.TEXT], labels, len(classes), n_folds, seed)
    scores = get_label_quality_scores(labels, probabilities, method="self_confidence")
    ranked = find_label_issues(
        labels,
        probabilities,
        filter_by="prune_by_noise_rate",
        return_indices_ranked_by="self_confidence",
        n_jobs=1,  # its default forks a pool, which can deadlock inside a threaded worker
    )
    suggested = probabilities.argmax(axis=1)
    rows = labelled.iloc[ranked]
    queue = pd.DataFrame(
        {
            "rank": np.arange(1, len(ranked) + 1),
            F.ITEM_ID: rows[F.ITEM_ID].to_numpy(),
            F.TEXT: rows[F.TEXT].to_numpy(),
            F.SPLIT: rows[F.SPLIT].to_numpy(),
            "given_label": rows[F.LABEL].to_numpy(),
            "suggested_label": np.asarray(classes, dtype=object)[suggested[ranked]],
            "score": scores[ranked],
            "given_label_probability": probabilities[ranked, labels[ranked]],
            "suggested_label_probability": probabilities[ranked, suggested[ranked]],
            "votes": rows[F.ITEM_ID].map(vote_strings(annotations)).to_numpy(),
            "consensus_label": rows[F.ITEM_ID]
            .map(consensus.set_index(F.ITEM_ID)["consensus_label"])
            .to_numpy(),
        }
    )[QUEUE_COLUMNS]
    summary = {
        "method": METHOD,
        "model": MODEL,
        "folds": n_folds,
        "items": len(labelled),
        "unlabelled_items": len(items) - len(labelled),
        "suspected": len(ranked),
        "rate": len(ranked) / len(labelled),
        "out_of_fold_accuracy": float((suggested == labels).mean()),
    }
    return LabelErrorResult(queue, summary)

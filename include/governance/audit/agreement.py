"""Inter-annotator agreement of a multi-annotator dataset: Krippendorff, Fleiss and Cohen.

A nightly audit measures agreement over every vote of a dataset (100,000s of items), so each
statistic is computed with whole-array numpy from an (items x classes) vote-count matrix or, for
Cohen's kappa, from one ``np.bincount`` over all annotator pairs at once; nothing loops over items.

Votes are rows of an annotations frame (``item_id``, ``annotator``, ``label``), one per
(item, annotator). Items may carry different numbers of votes because some votes are quarantined
upstream; an item with fewer than two votes says nothing about agreement and is ignored.
Undefined statistics (e.g. every vote in one class) are NaN, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance import frames
from governance.errors import InvalidInputError

_REQUIRED_COLUMNS = (frames.ITEM_ID, frames.ANNOTATOR, frames.LABEL)
_PAIR_COLUMNS = ["annotator_a", "annotator_b", "n_items", "kappa"]


@dataclass(frozen=True)
class EncodedVotes:
    """Votes as integer codes: items and annotators in sorted order, labels in class order."""

    items: pd.Index
    annotators: pd.Index
    item_codes: np.ndarray
    annotator_codes: np.ndarray
    label_codes: np.ndarray
    n_classes: int


def _check_classes(classes: list[str]) -> None:
    if len(classes) == 0:
        raise InvalidInputError("classes: at least one class is required")
    if len(set(classes)) != len(classes):
        raise InvalidInputError(f"classes: must be unique, got {list(classes)}")


def encode_votes(annotations: pd.DataFrame, classes: list[str]) -> EncodedVotes:
    """Integer codes for items, annotators and labels, after checking the frame is well formed.

    Raises ValueError for missing columns, empty keys, labels outside ``classes`` or a second vote
    by one annotator on one item, because each of these would silently bias every statistic.
    """
    _check_classes(classes)
    missing = [name for name in _REQUIRED_COLUMNS if name not in annotations.columns]
    if missing:
        raise InvalidInputError(f"annotations: missing columns {missing}")
    item_codes, items = pd.factorize(annotations[frames.ITEM_ID], sort=True)
    annotator_codes, annotators = pd.factorize(annotations[frames.ANNOTATOR], sort=True)
    for name, codes in ((frames.ITEM_ID, item_codes), (frames.ANNOTATOR, annotator_codes)):
        if (codes < 0).any():
            raise InvalidInputError(f"annotations.{name}: {int((codes < 0).sum())} empty value(s)")
    labels = annotations[frames.LABEL]
    label_codes = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    unknown = label_codes < 0
    if unknown.any():
        examples = sorted({str(value) for value in labels[unknown].head(1000)})[:5]
        raise InvalidInputError(
            f"annotations.label: {int(unknown.sum())} value(s) outside classes {list(classes)}, "
            f"e.g. {examples}"
        )
    vote_keys = item_codes.astype(np.int64) * len(annotators) + annotator_codes
    repeated = len(vote_keys) - len(np.unique(vote_keys))
    if repeated:
        first = annotations[pd.Series(vote_keys).duplicated().to_numpy()].iloc[0]
        raise InvalidInputError(
            f"annotations: {repeated} repeated vote(s) for one (item_id, annotator), "
            f"e.g. ({first[frames.ITEM_ID]!r}, {first[frames.ANNOTATOR]!r})"
        )
    return EncodedVotes(
        items=pd.Index(items, name=frames.ITEM_ID),
        annotators=pd.Index(annotators, name=frames.ANNOTATOR),
        item_codes=item_codes.astype(np.int64),
        annotator_codes=annotator_codes.astype(np.int64),
        label_codes=label_codes,
        n_classes=len(classes),
    )


def _counts_from_codes(votes: EncodedVotes) -> np.ndarray:
    cells = votes.item_codes * votes.n_classes + votes.label_codes
    size = len(votes.items) * votes.n_classes
    return np.bincount(cells, minlength=size).reshape(len(votes.items), votes.n_classes)


def vote_counts(annotations: pd.DataFrame, classes: list[str]) -> tuple[pd.Index, np.ndarray]:
    """Sorted item ids and the (items x classes) matrix of how many votes each class got."""
    votes = encode_votes(annotations, classes)
    return votes.items, _counts_from_codes(votes)


def _check_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise InvalidInputError(
            f"counts: expected an (items x classes) matrix, got shape {counts.shape}"
        )
    if counts.size and not np.issubdtype(counts.dtype, np.integer):
        raise InvalidInputError(f"counts: expected integer vote counts, got dtype {counts.dtype}")
    if counts.size and counts.min() < 0:
        raise InvalidInputError("counts: vote counts must be non-negative")
    return counts.astype(np.int64, copy=False)


def _binarised(counts: np.ndarray, class_index: int) -> np.ndarray:
    """Two columns per item: votes for the class and votes for any other class."""
    hits = counts[:, class_index]
    return np.stack([hits, counts.sum(axis=1) - hits], axis=1)


def _check_class_names(counts: np.ndarray, classes: list[str]) -> None:
    _check_classes(classes)
    if counts.shape[1] != len(classes):
        raise InvalidInputError(
            f"classes: {len(classes)} names for {counts.shape[1]} count columns"
        )


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's (classes x classes) coincidence matrix over the items with >= 2 votes.

    o[c, k] = sum over items u of n_uc * (n_uk - [c == k]) / (m_u - 1), m_u the item's votes.
    """
    counts = _check_counts(counts)
    votes = counts.sum(axis=1)
    pairable = counts[votes >= 2].astype(np.float64)
    weights = 1.0 / (votes[votes >= 2] - 1.0)
    weighted = pairable * weights[:, None]
    return weighted.T @ pairable - np.diag(weighted.sum(axis=0))


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Krippendorff's alpha, nominal metric; NaN when fewer than two values occur in pairs."""
    coincidences = coincidence_matrix(counts)
    per_value = coincidences.sum(axis=1)
    total = per_value.sum()
    expected_same = float((per_value * (per_value - 1.0)).sum())
    denominator = total * (total - 1.0) - expected_same
    if total < 2 or denominator <= 0:
        return math.nan
    return float(((total - 1.0) * np.trace(coincidences) - expected_same) / denominator)


def per_class_alpha(counts: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Alpha of each class against all others: which classes annotators confuse most."""
    counts = _check_counts(counts)
    _check_class_names(counts, classes)
    return {
        name: krippendorff_alpha_nominal(_binarised(counts, index))
        for index, name in enumerate(classes)
    }


def modal_vote_items(counts: np.ndarray) -> np.ndarray:
    """Mask of the items carrying the most common number of votes among those with >= 2.

    Fleiss' kappa needs the same number of raters per item. On a tie the larger number of votes
    wins, as it holds more agreement information per item.
    """
    counts = _check_counts(counts)
    votes = counts.sum(axis=1)
    frequency = np.bincount(votes[votes >= 2])
    if frequency.sum() == 0:
        return np.zeros(len(counts), dtype=bool)
    modal = len(frequency) - 1 - int(np.argmax(frequency[::-1]))
    return votes == modal


def _fleiss_subset(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """The counts of the modal-vote items, and their number of votes per item (0 when none)."""
    subset = counts[modal_vote_items(counts)]
    raters = int(subset[0].sum()) if len(subset) else 0
    return subset, raters


def _fleiss_from_subset(subset: np.ndarray, raters: int) -> float:
    if len(subset) == 0:
        return math.nan
    shares = subset.sum(axis=0) / (len(subset) * raters)
    expected = float((shares**2).sum())
    if expected >= 1.0:
        return math.nan
    observed = float(((subset * (subset - 1)).sum(axis=1) / (raters * (raters - 1))).mean())
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: np.ndarray) -> tuple[float, int]:
    """Fleiss' kappa over the items with the modal number of votes, and how many items that is."""
    subset, raters = _fleiss_subset(_check_counts(counts))
    return _fleiss_from_subset(subset, raters), len(subset)


def per_class_fleiss_kappa(counts: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Fleiss' per-category kappa: 1 - sum n_ij (m - n_ij) / (N m (m - 1) p_j (1 - p_j))."""
    counts = _check_counts(counts)
    _check_class_names(counts, classes)
    subset, raters = _fleiss_subset(counts)
    if len(subset) == 0:
        return dict.fromkeys(classes, math.nan)
    shares = subset.sum(axis=0) / (len(subset) * raters)
    disagreement = (subset * (raters - subset)).sum(axis=0)
    scale = len(subset) * raters * (raters - 1) * shares * (1.0 - shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappas = np.where(scale > 0, 1.0 - disagreement / scale, np.nan)
    return {name: float(kappa) for name, kappa in zip(classes, kappas, strict=True)}


def _pair_votes(votes: EncodedVotes) -> tuple[np.ndarray, ...]:
    """Every pair of votes on one item, as (annotator a, annotator b, label a, label b), a < b.

    Votes sorted by (item, annotator) put an item's votes side by side, so pairing each vote with
    the one d places further on, for d = 1 .. (largest item size - 1), yields each pair once.
    """
    order = np.lexsort((votes.annotator_codes, votes.item_codes))
    item = votes.item_codes[order]
    annotator = votes.annotator_codes[order]
    label = votes.label_codes[order]
    largest = int(np.bincount(item).max()) if len(item) else 0
    parts: list[tuple[np.ndarray, ...]] = []
    for offset in range(1, largest):
        left = np.flatnonzero(item[:-offset] == item[offset:])
        right = left + offset
        parts.append((annotator[left], annotator[right], label[left], label[right]))
    if not parts:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _cohen_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each (K x K) confusion matrix; NaN where chance agreement is 1."""
    total = confusions.sum(axis=(1, 2)).astype(np.float64)
    observed = np.trace(confusions, axis1=1, axis2=2) / total
    expected = (confusions.sum(axis=2) * confusions.sum(axis=1)).sum(axis=1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)


def pairwise_cohen_kappa(
    annotations: pd.DataFrame, classes: list[str], min_overlap: int = 10
) -> pd.DataFrame:
    """Cohen's kappa per annotator pair with >= min_overlap common items, sorted by (a, b).

    Reveals a single unreliable annotator, which pooled statistics average away.
    """
    if min_overlap < 1:
        raise InvalidInputError(f"min_overlap: must be >= 1, got {min_overlap}")
    votes = encode_votes(annotations, classes)
    first, second, first_label, second_label = _pair_votes(votes)
    n_annotators, n_classes = len(votes.annotators), votes.n_classes
    pairs, pair_index = np.unique(first * n_annotators + second, return_inverse=True)
    cells = (pair_index * n_classes + first_label) * n_classes + second_label
    confusions = np.bincount(cells, minlength=len(pairs) * n_classes**2).reshape(
        len(pairs), n_classes, n_classes
    )
    overlap = confusions.sum(axis=(1, 2))
    keep = overlap >= min_overlap
    pairs = pairs[keep]
    return pd.DataFrame(
        {
            "annotator_a": votes.annotators[pairs // n_annotators],
            "annotator_b": votes.annotators[pairs % n_annotators],
            "n_items": overlap[keep].astype(np.int64),
            "kappa": _cohen_from_confusions(confusions[keep]),
        },
        columns=_PAIR_COLUMNS,
    )


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def agreement_summary(annotations: pd.DataFrame, classes: list[str]) -> dict:
    """The dataset's agreement figures for the governance report, JSON-ready (NaN -> None)."""
    votes = encode_votes(annotations, classes)
    counts = _counts_from_codes(votes)
    kappa, fleiss_items = fleiss_kappa(counts)
    class_alpha = per_class_alpha(counts, classes)
    class_kappa = per_class_fleiss_kappa(counts, classes)
    return {
        "krippendorff_alpha": _json_float(krippendorff_alpha_nominal(counts)),
        "fleiss_kappa": _json_float(kappa),
        "fleiss_items": int(fleiss_items),
        "annotators": len(votes.annotators),
        "votes": len(votes.label_codes),
        "per_class": {
            name: {
                "krippendorff_alpha": _json_float(class_alpha[name]),
                "fleiss_kappa": _json_float(class_kappa[name]),
            }
            for name in classes
        },
    }

"""How a version differs from the one published before it.

Three signals a reviewer can act on: the class balance (with a chi-square test, and the largest
change of any class's share, which the gate bounds), the distribution of text lengths (two-sample
Kolmogorov-Smirnov), and the share of today's vocabulary never seen in the previous version.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp

from governance import frames as F

LENGTH_BINS = 20
_WORD = re.compile(r"\w+")


def class_counts(labels: pd.Series, classes: list[str]) -> pd.Series:
    return labels.value_counts().reindex(classes, fill_value=0)


def shares(counts: pd.Series) -> dict[str, float]:
    total = counts.sum()
    return {str(c): float(n / total) if total else 0.0 for c, n in counts.items()}


def class_balance(current: pd.Series, previous: pd.Series | None, classes: list[str]):
    """Shares per class, the largest change of any share, and a chi-square test of the counts."""
    now = class_counts(current, classes)
    result: dict[str, Any] = {
        "current": shares(now),
        "previous": None,
        "max_share_change": None,
        "chi2": None,
        "p_value": None,
    }
    if previous is None:
        return result
    before = class_counts(previous, classes)
    result["previous"] = shares(before)
    result["max_share_change"] = max(
        abs(result["current"][c] - result["previous"][c]) for c in classes
    )
    table = np.array([now.to_numpy(), before.to_numpy()])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and (table.sum(axis=1) > 0).all():
        test = chi2_contingency(table, correction=False)
        result["chi2"], result["p_value"] = float(test.statistic), float(test.pvalue)
    return result


def text_lengths(current: pd.Series, previous: pd.Series | None) -> dict[str, Any]:
    """Characters per text: medians, a KS test, and histograms on shared bins for the plot."""
    now = current.str.len().to_numpy(dtype=float)
    before = None if previous is None else previous.str.len().to_numpy(dtype=float)
    pooled = now if before is None else np.concatenate([now, before])
    edges = np.histogram_bin_edges(pooled, bins=LENGTH_BINS) if len(pooled) else np.array([])
    result: dict[str, Any] = {
        "current_median": float(np.median(now)) if len(now) else None,
        "previous_median": None,
        "ks_statistic": None,
        "p_value": None,
        "bins": edges.tolist(),
        "current_hist": np.histogram(now, bins=edges)[0].tolist() if len(edges) else [],
        "previous_hist": None,
    }
    if before is not None and len(before) and len(now):
        test = ks_2samp(now, before)
        result.update(
            previous_median=float(np.median(before)),
            ks_statistic=float(test.statistic),
            p_value=float(test.pvalue),
            previous_hist=np.histogram(before, bins=edges)[0].tolist(),
        )
    return result


def vocabulary(texts: pd.Series) -> set[str]:
    return set(_WORD.findall(" ".join(texts.astype(str)).lower()))


def new_vocabulary_share(current: pd.Series, previous: pd.Series | None) -> float | None:
    """Share of the distinct words of this version that the previous version never used."""
    if previous is None:
        return None
    words = vocabulary(current)
    return len(words - vocabulary(previous)) / len(words) if words else 0.0


def compare_versions(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    classes: list[str],
    previous_version: str | None,
) -> dict[str, Any]:
    """Drift of ``current`` against ``previous`` (None for a first publication)."""
    before_labels = None if previous is None else previous[F.LABEL]
    before_texts = None if previous is None else previous[F.TEXT]
    return {
        "previous_version": previous_version,
        "class_balance": class_balance(current[F.LABEL], before_labels, classes),
        "text_length": text_lengths(current[F.TEXT], before_texts),
        "new_vocabulary_share": new_vocabulary_share(current[F.TEXT], before_texts),
    }

"""Drift figures against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance.audit.drift import (
    class_balance,
    compare_versions,
    new_vocabulary_share,
    text_lengths,
)

CLASSES = ["a", "b", "c"]


def test_class_balance_shares_change_and_chi_square() -> None:
    current = pd.Series(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    previous = pd.Series(["a"] * 40 + ["b"] * 40 + ["c"] * 20)
    result = class_balance(current, previous, CLASSES)
    assert result["current"] == {"a": 0.6, "b": 0.3, "c": 0.1}
    assert result["max_share_change"] == pytest.approx(0.2)
    observed = np.array([[60, 30, 10], [40, 40, 20]], dtype=float)
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert result["chi2"] == pytest.approx(chi2, 1e-12)
    assert result["p_value"] == pytest.approx(np.exp(-chi2 / 2), 1e-9)  # 2 degrees of freedom


def test_a_class_missing_today_counts_as_a_full_drop() -> None:
    result = class_balance(pd.Series(["a", "b"] * 10), pd.Series(["a", "b", "c"] * 10), CLASSES)
    assert result["current"]["c"] == 0.0
    assert result["max_share_change"] == pytest.approx(1 / 3)


def test_text_length_ks_statistic_is_the_largest_cdf_gap() -> None:
    current = pd.Series(["x" * n for n in range(10, 60)])
    previous = pd.Series(["x" * n for n in range(30, 80)])
    result = text_lengths(current, previous)
    grid = np.arange(0, 100)
    gap = max(abs(np.mean(np.arange(10, 60) <= g) - np.mean(np.arange(30, 80) <= g)) for g in grid)
    assert result["ks_statistic"] == pytest.approx(gap)
    assert result["current_median"] == 34.5 and result["previous_median"] == 54.5
    assert sum(result["current_hist"]) == 50 and sum(result["previous_hist"]) == 50
    assert len(result["bins"]) == len(result["current_hist"]) + 1


def test_new_vocabulary_share_counts_distinct_unseen_words() -> None:
    current = pd.Series(["Red green blue", "blue YELLOW"])
    previous = pd.Series(["red green"])
    assert new_vocabulary_share(current, previous) == pytest.approx(2 / 4)


def test_first_version_has_nothing_to_compare() -> None:
    current = pd.DataFrame({"text": ["a b", "c d e"], "label": ["a", "b"]})
    result = compare_versions(current, None, CLASSES, None)
    assert result["previous_version"] is None
    assert result["class_balance"]["max_share_change"] is None
    assert result["text_length"]["ks_statistic"] is None
    assert result["new_vocabulary_share"] is None

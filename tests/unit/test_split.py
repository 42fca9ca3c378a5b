from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance.split import NO_LABEL, assign_splits, split_sizes

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def make_items(n: int, seed: int = 0, prefix: str = "i", cluster_size: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1])
    ids = [f"{prefix}{k}" for k in range(n)]
    clusters = [f"c{prefix}{k // cluster_size}" for k in range(n)]
    if cluster_size > 1:  # one label per cluster, as the representative's
        labels = np.array([labels[(k // cluster_size) * cluster_size] for k in range(n)])
    return pd.DataFrame(
        {
            "item_id": ids,
            "cluster_id": clusters,
            "label": labels,
            "history_split": pd.Series([None] * n, dtype=object),
            "n_source_rows": 1,
        }
    )


def assert_stratified(frame: pd.DataFrame, tolerance: float) -> None:
    for label, group in frame.groupby(frame["label"].fillna(NO_LABEL)):
        counts = group["split"].value_counts()
        for split, fraction in FRACTIONS.items():
            expected = fraction * len(group)
            assert abs(counts.get(split, 0) - expected) <= tolerance, (label, split, counts)


def test_each_label_is_dealt_to_within_one_item_of_its_target() -> None:
    items = make_items(1000)
    items["split"] = assign_splits(items, FRACTIONS)
    assert set(items["split"]) == {"train", "val", "test"}
    assert_stratified(items, tolerance=1)


def test_assignment_ignores_arrival_order() -> None:
    items = make_items(500)
    first = assign_splits(items, FRACTIONS)
    shuffled = items.sample(frac=1.0, random_state=3)
    second = assign_splits(shuffled, FRACTIONS)
    assert dict(zip(items["item_id"], first, strict=True)) == dict(
        zip(shuffled["item_id"], second, strict=True)
    )


def test_salt_changes_the_deal_but_not_the_balance() -> None:
    items = make_items(600)
    plain = assign_splits(items, FRACTIONS)
    salted = assign_splits(items, FRACTIONS, salt="other")
    assert (plain != salted).any()
    items["split"] = salted
    assert_stratified(items, tolerance=1)


def test_whole_clusters_share_one_split() -> None:
    items = make_items(900, cluster_size=3)
    items["split"] = assign_splits(items, FRACTIONS)
    assert (items.groupby("cluster_id")["split"].nunique() == 1).all()
    assert_stratified(items, tolerance=3)


def test_published_items_keep_their_split_and_new_days_rebalance() -> None:
    day1 = make_items(400, seed=1, prefix="d1-")
    day1["split"] = assign_splits(day1, FRACTIONS)
    history = day1[["item_id", "label", "split"]]

    day2 = make_items(300, seed=2, prefix="d2-")
    # an item that arrives again under its old id, and a new member of an old cluster
    old = day1.iloc[5]
    day2.loc[0, ["item_id", "label"]] = [old["item_id"], old["label"]]
    day2.loc[1, "history_split"] = day1.iloc[9]["split"]
    day2["split"] = assign_splits(day2, FRACTIONS, history)

    assert day2.loc[0, "split"] == old["split"]
    assert day2.loc[1, "split"] == day1.iloc[9]["split"]
    combined = pd.concat([day1, day2.iloc[1:]], ignore_index=True)
    assert_stratified(combined, tolerance=1)


def test_missing_labels_form_their_own_stratum() -> None:
    items = make_items(200)
    items.loc[:49, "label"] = None
    items["split"] = assign_splits(items, FRACTIONS)
    sizes = split_sizes(items)
    assert sum(sizes[s]["by_label"].get(NO_LABEL, 0) for s in sizes) == 50
    assert_stratified(items, tolerance=1)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_tiny_days_still_fill_train_first(n: int) -> None:
    items = make_items(n)
    split = assign_splits(items, FRACTIONS)
    assert split.iloc[0] == "train"

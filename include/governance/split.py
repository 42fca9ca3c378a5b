"""Leakage-free, stratified, deterministic and day-stable train/val/test assignment.

Whole duplicate clusters go to one split, so no near-duplicate pair crosses train/val/test. An
item that was published before keeps its split forever, and a new member of an old cluster joins
the old cluster's split. New clusters are dealt out label by label, in an order fixed by a salted
hash of their cluster id, each to the split that is furthest behind its target share of that
label (counting everything published before): the result is stratified to within one cluster per
label and identical on every rerun.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import cast

import pandas as pd

from governance.frames import CLUSTER_ID, ITEM_ID, LABEL, N_SOURCE_ROWS, SPLIT, SPLITS

NO_LABEL = "<none>"


def cluster_order_key(cluster_id: str, salt: str) -> str:
    """A stable pseudo-random rank for a cluster, independent of arrival order."""
    return hashlib.sha256(f"{salt}\x1f{cluster_id}".encode()).hexdigest()


def label_split_counts(history: pd.DataFrame | None) -> dict[str, dict[str, int]]:
    """Items already published per label and split: the baseline the new items balance against."""
    counts: dict[str, dict[str, int]] = {}
    if history is None or history.empty:
        return counts
    labels = history[LABEL].fillna(NO_LABEL).astype(str)
    sizes = history.groupby([labels, history[SPLIT]]).size()
    for (label, split), n in cast("Iterable[tuple[tuple[str, str], int]]", sizes.items()):
        counts.setdefault(label, dict.fromkeys(SPLITS, 0))[split] = int(n)
    return counts


def _most_behind(counts: dict[str, int], fractions: Mapping[str, float], weight: int) -> str:
    total = sum(counts.values()) + weight
    return max(SPLITS, key=lambda s: (fractions[s] * total - counts[s], -SPLITS.index(s)))


def assign_splits(
    kept: pd.DataFrame,
    fractions: Mapping[str, float],
    history: pd.DataFrame | None = None,
    salt: str = "",
) -> pd.Series:
    """Split name per kept item (index aligned with ``kept``).

    ``kept`` needs item_id, cluster_id, label and a ``history_split`` column (the split of the
    cluster's published members, NA for new clusters). ``history`` holds published items with
    item_id, label and split; an item id found there keeps its split.
    """
    fixed = kept["history_split"].astype("object")
    if history is not None and not history.empty:
        registry = history.drop_duplicates(ITEM_ID, keep="first").set_index(ITEM_ID)[SPLIT]
        known = kept[ITEM_ID].map(registry)
        fixed = known.where(known.notna(), fixed)
    fixed = fixed.where(fixed.notna(), None)

    counts = label_split_counts(history)
    labels = kept[LABEL].astype("object").where(kept[LABEL].notna(), NO_LABEL)
    for label, split in zip(labels[fixed.notna()], fixed[fixed.notna()], strict=True):
        counts.setdefault(label, dict.fromkeys(SPLITS, 0))[split] += 1

    new = kept[fixed.isna()]
    result = fixed.copy()
    if new.empty:
        return result.astype(object)
    new_labels = labels[new.index]
    clusters = (
        pd.DataFrame({CLUSTER_ID: new[CLUSTER_ID], LABEL: new_labels})
        .groupby(CLUSTER_ID, sort=False)
        .agg(label=(LABEL, "first"), weight=(LABEL, "size"))
        .reset_index()
    )
    clusters["order"] = [cluster_order_key(c, salt) for c in clusters[CLUSTER_ID]]
    clusters = clusters.sort_values([LABEL, "order"], kind="stable")

    cluster_split: dict[str, str] = {}
    for cluster_id, label, weight in zip(
        clusters[CLUSTER_ID], clusters[LABEL], clusters["weight"], strict=True
    ):
        label_counts = counts.setdefault(label, dict.fromkeys(SPLITS, 0))
        split = _most_behind(label_counts, fractions, int(weight))
        label_counts[split] += int(weight)
        cluster_split[cluster_id] = split
    result.loc[new.index] = new[CLUSTER_ID].map(cluster_split)
    return result.astype(object)


def split_sizes(frame: pd.DataFrame) -> dict[str, dict]:
    """Rows, items and per-label counts of each split, for the manifest and the summary."""
    sizes: dict[str, dict] = {}
    for split in SPLITS:
        part = frame[frame[SPLIT] == split]
        sizes[split] = {
            "items": len(part),
            "rows": int(part[N_SOURCE_ROWS].sum()) if len(part) else 0,
            "by_label": {
                str(k): int(v)
                for k, v in part[LABEL].fillna(NO_LABEL).value_counts().sort_index().items()
            },
        }
    return sizes

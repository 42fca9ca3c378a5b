"""Which texts duplicate which: LSH candidates among the day's texts and against history rows,
each verified with the exact Jaccard of the shingle sets, then the connected components over
the verified pairs, the exact matches with history and the touched history clusters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance import frames
from governance.dedup.inputs import EXACT_KEY, NORM_TEXT, Batch, DedupConfig, History
from governance.dedup.minhash import (
    bucket_pairs,
    estimated_jaccard,
    signatures,
    sketch_margin,
)
from governance.dedup.textnorm import shingle_sets
from governance.dedup.unionfind import connected_components


@dataclass
class NearPairs:
    """Verified similar pairs: new text -> new text, and new text -> history row."""

    new_left: np.ndarray
    new_right: np.ndarray
    hist_text: np.ndarray
    hist_row: np.ndarray
    candidates: int
    verified: int  # candidates whose sketch estimate made the exact check worthwhile
    capped_buckets: int


def near_pairs(batch: Batch, past: History, config: DedupConfig) -> NearPairs:
    """LSH candidates among the batch's texts and against history rows sharing a band key,
    each verified with the exact Jaccard of the shingle sets."""
    active = np.flatnonzero(batch.shingle_counts > 0)
    hist_active = past.frame[NORM_TEXT].fillna("").astype(str).to_numpy() != ""
    touching = shares_a_band_key(past.keys, batch.keys[active])
    hist_rows = np.flatnonzero(touching & hist_active)
    keys = np.concatenate([batch.keys[active], past.keys[hist_rows]])
    left, right, capped = bucket_pairs(keys, len(active), config.max_bucket)
    to_history = right >= len(active)
    left = active[left]
    right = np.where(to_history, right - len(active), active[np.minimum(right, len(active) - 1)])
    hist_texts = past.frame[NORM_TEXT].iloc[hist_rows].astype(str).tolist()
    hist_sets = shingle_sets(hist_texts, config.ngram)
    other = np.where(to_history, len(batch.texts) + right, right)
    sketch = np.concatenate(
        [batch.sketch, signatures(hist_sets, config.num_perm).astype(np.uint16)]
    )
    floor = config.threshold - sketch_margin(config.threshold, config.num_perm)
    plausible = np.flatnonzero(estimated_jaccard(sketch, left, other) >= floor)
    similar = np.zeros(len(left), dtype=bool)
    similar[plausible] = (
        batch.pair_jaccard(hist_texts, left[plausible], other[plausible], config.ngram)
        >= config.threshold
    )
    within, across = similar & ~to_history, similar & to_history
    return NearPairs(
        new_left=left[within],
        new_right=right[within],
        hist_text=left[across],
        hist_row=hist_rows[right[across]],
        candidates=len(left),
        verified=len(plausible),
        capped_buckets=capped,
    )


def shares_a_band_key(history: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Per history row: whether any band key equals the same band's key of a batch text
    (a binary search into each sorted batch band, cheap however long the history grows)."""
    touching = np.zeros(len(history), dtype=bool)
    if len(history) == 0 or len(batch) == 0:
        return touching
    for band in range(batch.shape[1]):
        keys = np.sort(batch[:, band])
        slot = np.minimum(np.searchsorted(keys, history[:, band]), len(keys) - 1)
        touching |= keys[slot] == history[:, band]
    return touching


@dataclass
class Graph:
    """Connected components over batch texts (nodes [0, n_texts)) and the rows of every history
    cluster the batch touches (nodes n_texts + k, k in history rank order)."""

    component_of_text: np.ndarray
    hist_nodes: pd.DataFrame  # history rows with a "component" column
    exact_history_links: int


def cluster_graph(batch: Batch, past: History, near: NearPairs) -> Graph:
    n_texts = len(batch.texts)
    exact_text, exact_row = exact_history_matches(batch, past)
    touched_rows = np.union1d(exact_row, near.hist_row)
    touched_clusters = past.frame[frames.CLUSTER_ID].iloc[touched_rows].unique()
    node_rows = np.flatnonzero(past.frame[frames.CLUSTER_ID].isin(touched_clusters).to_numpy())
    node_of_row = np.full(len(past.frame), -1, dtype=np.int64)
    node_of_row[node_rows] = n_texts + np.arange(len(node_rows))
    cluster_codes, _ = pd.factorize(past.frame[frames.CLUSTER_ID].iloc[node_rows])
    by_cluster = np.argsort(cluster_codes, kind="stable")
    same = cluster_codes[by_cluster][1:] == cluster_codes[by_cluster][:-1]
    left = np.concatenate(
        [near.new_left, exact_text, near.hist_text, n_texts + by_cluster[:-1][same]]
    )
    right = np.concatenate(
        [
            near.new_right,
            node_of_row[exact_row],
            node_of_row[near.hist_row],
            n_texts + by_cluster[1:][same],
        ]
    )
    component = connected_components(n_texts + len(node_rows), left, right)
    hist_nodes = past.frame.iloc[node_rows].reset_index(drop=True)
    hist_nodes["component"] = component[n_texts:]
    # Same text, same code: a history row whose text a batch text repeats takes its index.
    text_code = n_texts + np.arange(len(node_rows))
    text_code[node_of_row[exact_row] - n_texts] = exact_text
    hist_nodes["text_code"] = text_code
    return Graph(component[:n_texts], hist_nodes, len(exact_row))


def exact_history_matches(batch: Batch, past: History) -> tuple[np.ndarray, np.ndarray]:
    """(batch text, history row) pairs with identical normalised text (key match, then text)."""
    text_keys = batch.text_keys
    order = np.argsort(text_keys, kind="stable")
    hist_keys = past.frame[EXACT_KEY].to_numpy(dtype=np.int64)
    slot = np.minimum(np.searchsorted(text_keys[order], hist_keys), max(len(order) - 1, 0))
    rows = np.flatnonzero(text_keys[order][slot] == hist_keys) if len(order) else slot[:0]
    texts = order[slot[rows]]
    equal = batch.texts[texts] == past.frame[NORM_TEXT].iloc[rows].astype(str).to_numpy()
    return texts[equal], rows[equal]

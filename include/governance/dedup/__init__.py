"""Exact and near-duplicate removal within a day's items and against every earlier day.

Exact duplicates share a normalised text; near duplicates have a word-shingle Jaccard
similarity >= the threshold, found with MinHash + LSH and each candidate verified exactly, so
no pair is merged on an estimate. Clusters are connected components of those pairs, plus the
clusters already published (history), so a new copy of an old item joins the old item's
cluster and split and published items are never dropped or changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from governance import frames
from governance.dedup.decide import Outcome, decide
from governance.dedup.inputs import (
    CONFLICT_COLUMNS,
    DUPLICATE_COLUMNS,
    EXACT_KEY,
    HISTORY_SPLIT,
    LSH_SCHEME,
    NORM_TEXT,
    STAGE,
    Batch,
    DedupConfig,
    History,
    cluster_id_for,
)
from governance.dedup.match import Graph, NearPairs, cluster_graph, near_pairs
from governance.dedup.minhash import (
    LshScheme,
)
from governance.errors import InvalidInputError

__all__ = ["DedupConfig", "DedupResult", "cluster_id_for", "deduplicate"]


@dataclass
class DedupResult:
    """Every input item lands in exactly one of: kept (not quarantined), duplicates, quarantine."""

    assignments: pd.DataFrame
    duplicates: pd.DataFrame
    quarantine: pd.DataFrame
    conflicts: pd.DataFrame
    index: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def deduplicate(
    items: pd.DataFrame, history: pd.DataFrame | None, config: DedupConfig
) -> DedupResult:
    """Cluster the day's items with each other and with the published history, then keep,
    drop or quarantine each new item (see DedupConfig)."""
    _check_items(items)
    scheme = config.scheme
    batch = Batch.build(items, scheme)
    past = History.build(history, scheme)
    near = near_pairs(batch, past, config)
    batch.sketch = batch.sketch[:0]  # only candidates needed it; free it before assembling
    nodes = cluster_graph(batch, past, near)
    outcome = decide(batch, nodes, config)
    return _assemble(batch, nodes, outcome, near, scheme, config)


def _check_items(items: pd.DataFrame) -> None:
    missing = [c for c in frames.ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise InvalidInputError(f"items: missing columns {missing}")
    if items[frames.ITEM_ID].isna().any() or items[frames.ITEM_ID].duplicated().any():
        raise InvalidInputError("items: item_id must be present and unique")
    if items[frames.TEXT].isna().any():
        raise InvalidInputError(
            "items: text must not be missing (validation quarantines such rows)"
        )


def _assemble(
    batch: Batch,
    graph: Graph,
    outcome: Outcome,
    near: NearPairs,
    scheme: LshScheme,
    config: DedupConfig,
) -> DedupResult:
    items = batch.items
    members = outcome.members
    kept_member = outcome.kept_member
    kept_is_history = members["is_history"].to_numpy()[kept_member]
    rep_is_history = members["is_history"].to_numpy()[outcome.rep]
    rep_split = members[frames.SPLIT].to_numpy()[outcome.rep]
    # numpy's stubs take a None third argument for the one-argument form of where
    history_values = cast(np.ndarray, np.where(rep_is_history, rep_split, None))
    history_split = pd.array(history_values, dtype="str")
    assignments = pd.DataFrame(
        {
            frames.ITEM_ID: items[frames.ITEM_ID].to_numpy(),
            frames.CLUSTER_ID: pd.array(outcome.cluster_id, dtype="str"),
            "kept": outcome.kept,
            frames.DUPLICATE_KIND: pd.array(outcome.kind, dtype="str"),
            frames.KEPT_ITEM_ID: pd.array(
                members[frames.ITEM_ID].to_numpy()[kept_member], dtype="str"
            ),
            HISTORY_SPLIT: history_split,
            "conflict": outcome.conflict,
            "quarantined": outcome.quarantined,
        }
    )
    dropped = np.flatnonzero(outcome.kind != "")
    duplicates = _duplicates(batch, graph, outcome, dropped, kept_is_history, config)
    quarantine = _quarantine(items, outcome)
    conflicts = _conflict_frame(outcome, config)
    index = _index(batch, outcome, scheme)
    kinds = pd.Series(outcome.kind)
    stats = {
        "rows_in": len(items),
        "exact_dropped": int((kinds == "exact").sum()),
        "near_dropped": int((kinds == "near").sum()),
        "quarantined": int(outcome.quarantined.sum()),
        "kept": int(outcome.kept.sum()),
        "clusters": outcome.clusters,
        "conflicts": len(conflicts),
        "candidate_pairs": near.candidates,
        "checked_pairs": near.verified,
        "verified_pairs": len(near.new_left) + len(near.hist_text),
        "history_exact_links": graph.exact_history_links,
        "capped_buckets": near.capped_buckets,
        "bands": scheme.bands,
        "rows_per_band": scheme.rows,
    }
    return DedupResult(assignments, duplicates, quarantine, conflicts, index, stats)


def _duplicates(
    batch: Batch,
    graph: Graph,
    outcome: Outcome,
    dropped: np.ndarray,
    kept_is_history: np.ndarray,
    config: DedupConfig,
) -> pd.DataFrame:
    """One row per dropped item with the exact Jaccard similarity of its shingles to the item
    kept in its place (1.0 for the same normalised text)."""
    members = outcome.members
    kept = outcome.kept_member[dropped]
    similarity = np.ones(len(dropped))
    text_code = members["text_code"].to_numpy()  # equal codes <=> equal normalised texts
    differs = text_code[dropped] != text_code[kept]
    if differs.any():
        hist_texts = graph.hist_nodes[NORM_TEXT].fillna("").astype(str).tolist()
        text_node = members["text_node"].to_numpy()
        similarity[differs] = batch.pair_jaccard(
            hist_texts, text_node[dropped[differs]], text_node[kept[differs]], config.ngram
        )
    items = batch.items.iloc[dropped]
    return pd.DataFrame(
        {
            frames.CLUSTER_ID: pd.array(outcome.cluster_id[dropped], dtype="str"),
            frames.ITEM_ID: items[frames.ITEM_ID].to_numpy(),
            frames.KEPT_ITEM_ID: pd.array(members[frames.ITEM_ID].to_numpy()[kept], dtype="str"),
            frames.DUPLICATE_KIND: pd.array(outcome.kind[dropped], dtype="str"),
            "similarity": similarity,
            "in_history": kept_is_history[dropped],
            frames.SOURCE_FILE: items[frames.SOURCE_FILE].to_numpy(),
            frames.SOURCE_LINE: items[frames.SOURCE_LINE].to_numpy(),
            frames.N_SOURCE_ROWS: items[frames.N_SOURCE_ROWS].to_numpy(),
            frames.LABEL: pd.array(members[frames.LABEL].to_numpy()[dropped], dtype="str"),
            "kept_label": pd.array(members[frames.LABEL].to_numpy()[kept], dtype="str"),
        },
        columns=DUPLICATE_COLUMNS,
    )


def _quarantine(items: pd.DataFrame, outcome: Outcome) -> pd.DataFrame:
    rows = items.iloc[np.flatnonzero(outcome.quarantined)]
    return frames.quarantined_items(rows, STAGE, outcome.reasons[outcome.quarantined])


def _conflict_frame(outcome: Outcome, config: DedupConfig) -> pd.DataFrame:
    table = outcome.conflicts
    component = outcome.members["component"].to_numpy()[: len(outcome.cluster_id)]
    first_item = pd.Series(np.arange(len(component))).groupby(component).first()
    cluster_of = pd.Series(outcome.cluster_id[first_item.to_numpy()], index=first_item.index)
    action = [f"majority:{w}" if isinstance(w, str) else "quarantined" for w in table["winner"]]
    return pd.DataFrame(
        {
            frames.CLUSTER_ID: pd.array(cluster_of.reindex(table.index).to_numpy(), dtype="str"),
            "n_items": table["n_items"].to_numpy(dtype=np.int64),
            "labels": pd.array(table["labels"].to_numpy(), dtype="str"),
            "action": pd.array(action, dtype="str"),
            "item_ids": pd.array(table["item_ids"].to_numpy(), dtype="str"),
        },
        columns=CONFLICT_COLUMNS,
    )


def _index(batch: Batch, outcome: Outcome, scheme: LshScheme) -> pd.DataFrame:
    """What tomorrow's run needs to attach its duplicates to today's published items."""
    rows = np.flatnonzero(outcome.kept)
    text = batch.text_of_item[rows]
    index = pd.DataFrame(
        {
            frames.ITEM_ID: batch.items[frames.ITEM_ID].iloc[rows].to_numpy(),
            frames.CLUSTER_ID: pd.array(outcome.cluster_id[rows], dtype="str"),
            frames.LABEL: batch.items[frames.LABEL].iloc[rows].to_numpy(),
            NORM_TEXT: pd.array(batch.texts[text], dtype="str"),
            EXACT_KEY: batch.text_keys[text],
            LSH_SCHEME: pd.array([scheme.name] * len(rows), dtype="str"),
        }
    )
    keys = batch.keys[text]
    for band, column in enumerate(scheme.band_columns):  # no copy of the text columns
        index[column] = keys[:, band]
    return index

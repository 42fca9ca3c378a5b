"""Exact and near-duplicate removal within a day's items and against every earlier day.

Exact duplicates share a normalised text; near duplicates have a word-shingle Jaccard
similarity >= the threshold, found with MinHash + LSH and each candidate verified exactly, so
no pair is merged on an estimate. Clusters are connected components of those pairs, plus the
clusters already published (history), so a new copy of an old item joins the old item's
cluster and split and published items are never dropped or changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import pandas as pd

from governance import frames
from governance.contracts import DedupSpec
from governance.errors import InvalidInputError
from governance.minhash import (
    DEFAULT_MAX_BUCKET,
    RECALL_WEIGHTS,
    LshScheme,
    band_keys,
    band_keys_and_sketch,
    bucket_pairs,
    estimated_jaccard,
    pairwise_jaccard,
    signatures,
    sketch_margin,
)
from governance.textnorm import normalise_texts, shingle_sets, stable_hash64
from governance.unionfind import connected_components

STAGE = "dedup"
NORM_TEXT = "norm_text"
EXACT_KEY = "exact_key"
LSH_SCHEME = "lsh_scheme"
HISTORY_SPLIT = "history_split"
VERSION = "version"
HISTORY_COLUMNS = [
    frames.ITEM_ID,
    frames.CLUSTER_ID,
    frames.LABEL,
    NORM_TEXT,
    frames.SPLIT,
    VERSION,
]
ASSIGNMENT_COLUMNS = [
    frames.ITEM_ID,
    frames.CLUSTER_ID,
    "kept",
    frames.DUPLICATE_KIND,
    frames.KEPT_ITEM_ID,
    HISTORY_SPLIT,
    "conflict",
    "quarantined",
]
DUPLICATE_COLUMNS = [
    frames.CLUSTER_ID,
    frames.ITEM_ID,
    frames.KEPT_ITEM_ID,
    frames.DUPLICATE_KIND,
    "similarity",
    "in_history",
    frames.SOURCE_FILE,
    frames.SOURCE_LINE,
    frames.N_SOURCE_ROWS,
    frames.LABEL,
    "kept_label",
]
CONFLICT_COLUMNS = [frames.CLUSTER_ID, "n_items", "labels", "action", "item_ids"]


@dataclass(frozen=True)
class DedupConfig:
    """How duplicates are found and what happens to them (mirrors the contract's DedupSpec)."""

    threshold: float = 0.8
    ngram: int = 1
    num_perm: int = 128
    near_action: Literal["drop", "keep"] = "drop"
    conflict_action: Literal["quarantine", "majority"] = "quarantine"
    max_bucket: int = DEFAULT_MAX_BUCKET
    lsh_weights: tuple[float, float] = RECALL_WEIGHTS

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise InvalidInputError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.ngram < 1 or self.num_perm < 2 or self.max_bucket < 2:
            raise InvalidInputError("ngram must be >= 1, num_perm >= 2 and max_bucket >= 2")
        if self.near_action not in ("drop", "keep"):
            raise InvalidInputError(
                f"near_action must be 'drop' or 'keep', got {self.near_action!r}"
            )
        if self.conflict_action not in ("quarantine", "majority"):
            raise InvalidInputError(
                f"conflict_action must be 'quarantine' or 'majority', got {self.conflict_action!r}"
            )

    @classmethod
    def from_contract(cls, spec: DedupSpec) -> DedupConfig:
        return cls(
            threshold=spec.near_threshold,
            ngram=spec.ngram,
            num_perm=spec.num_perm,
            near_action=spec.near_action,
            conflict_action=spec.conflict_action,
        )

    @property
    def scheme(self) -> LshScheme:
        return LshScheme.for_threshold(self.threshold, self.num_perm, self.ngram, self.lsh_weights)


@dataclass
class DedupResult:
    """Every input item lands in exactly one of: kept (not quarantined), duplicates, quarantine."""

    assignments: pd.DataFrame
    duplicates: pd.DataFrame
    quarantine: pd.DataFrame
    conflicts: pd.DataFrame
    index: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def cluster_id_for(item_id: str) -> str:
    """Stable cluster id derived from the representative's item id."""
    return "c" + hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:16]


def deduplicate(
    items: pd.DataFrame, history: pd.DataFrame | None, config: DedupConfig
) -> DedupResult:
    """Cluster the day's items with each other and with the published history, then keep,
    drop or quarantine each new item (see DedupConfig)."""
    _check_items(items)
    scheme = config.scheme
    batch = _Batch.build(items, scheme)
    past = _History.build(history, scheme)
    near = _near_pairs(batch, past, config)
    batch.sketch = batch.sketch[:0]  # only candidates needed it; free it before assembling
    nodes = _cluster(batch, past, near)
    outcome = _decide(batch, nodes, config)
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


@dataclass
class _Batch:
    """The day's items and their distinct normalised texts (the unit of LSH work)."""

    items: pd.DataFrame
    norm: np.ndarray  # per item
    text_of_item: np.ndarray  # per item: index into texts
    texts: np.ndarray  # distinct normalised texts, in order of first appearance
    text_keys: np.ndarray  # exact key (int64) of each distinct text
    shingle_counts: np.ndarray  # per text; the shingles themselves are rebuilt on demand
    keys: np.ndarray  # (n_texts, bands) int64
    sketch: np.ndarray  # (n_texts, num_perm) uint16: low bits of the MinHash values

    @classmethod
    def build(cls, items: pd.DataFrame, scheme: LshScheme) -> _Batch:
        items = items.reset_index(drop=True)
        norm = normalise_texts(items[frames.TEXT].astype(str))  # no per-row Python strings
        text_of_item, texts = pd.factorize(norm)
        texts = np.asarray(texts, dtype=object)
        sets = shingle_sets(texts.tolist(), scheme.ngram)
        text_keys = stable_hash64(texts.tolist()).view(np.int64)
        keys, sketch = band_keys_and_sketch(sets, scheme)
        return cls(items, norm, text_of_item, texts, text_keys, sets.lengths, keys, sketch)

    def pair_jaccard(
        self, other_texts: list[str], left: np.ndarray, right: np.ndarray, ngram: int
    ) -> np.ndarray:
        """Exact Jaccard of text pairs; an index below len(texts) is a batch text, above it
        ``other_texts[index - len(texts)]``. Only the texts involved are shingled again, so the
        batch's full shingle arrays need not stay in memory while candidates are generated."""
        n_texts = len(self.texts)
        nodes = np.unique(np.concatenate([left, right]))
        texts = [self.texts[i] if i < n_texts else other_texts[i - n_texts] for i in nodes]
        sets = shingle_sets(texts, ngram)
        return pairwise_jaccard(sets, np.searchsorted(nodes, left), np.searchsorted(nodes, right))


@dataclass
class _History:
    """Published items, ranked by (version, row): the earliest is a cluster's representative."""

    frame: pd.DataFrame  # HISTORY_COLUMNS + rank, exact key
    keys: np.ndarray  # (n, bands) int64

    @classmethod
    def build(cls, history: pd.DataFrame | None, scheme: LshScheme) -> _History:
        if history is None or len(history) == 0:
            empty = pd.DataFrame({c: pd.Series(dtype="str") for c in HISTORY_COLUMNS})
            empty[EXACT_KEY] = pd.Series(dtype="int64")
            return cls(empty, np.zeros((0, scheme.bands), dtype=np.int64))
        missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
        if missing:
            raise InvalidInputError(f"history: missing columns {missing}")
        frame = history.reset_index(drop=True)
        order = np.lexsort((np.arange(len(frame)), frame[VERSION].astype(str).to_numpy()))
        frame = frame.iloc[order].reset_index(drop=True)
        norm = frame[NORM_TEXT].fillna("").astype(str).tolist()
        out = frame[HISTORY_COLUMNS].copy()
        out[EXACT_KEY] = stable_hash64(norm).view(np.int64)
        return cls(out, _history_keys(frame, norm, scheme))


def _history_keys(frame: pd.DataFrame, norm: list[str], scheme: LshScheme) -> np.ndarray:
    """Persisted band keys where they were made with today's scheme, recomputed elsewhere."""
    columns = scheme.band_columns
    reusable = np.zeros(len(frame), dtype=bool)
    keys = np.zeros((len(frame), scheme.bands), dtype=np.int64)
    if LSH_SCHEME in frame.columns and all(c in frame.columns for c in columns):
        reusable = (frame[LSH_SCHEME].astype(str) == scheme.name).to_numpy()
        keys[reusable] = frame.loc[reusable, columns].to_numpy(dtype=np.int64)
    stale = np.flatnonzero(~reusable)
    if len(stale):
        sets = shingle_sets([norm[i] for i in stale], scheme.ngram)
        keys[stale] = band_keys(sets, scheme)
    return keys


@dataclass
class _NearPairs:
    """Verified similar pairs: new text -> new text, and new text -> history row."""

    new_left: np.ndarray
    new_right: np.ndarray
    hist_text: np.ndarray
    hist_row: np.ndarray
    candidates: int
    verified: int  # candidates whose sketch estimate made the exact check worthwhile
    capped_buckets: int


def _near_pairs(batch: _Batch, past: _History, config: DedupConfig) -> _NearPairs:
    """LSH candidates among the batch's texts and against history rows sharing a band key,
    each verified with the exact Jaccard of the shingle sets."""
    active = np.flatnonzero(batch.shingle_counts > 0)
    hist_active = past.frame[NORM_TEXT].fillna("").astype(str).to_numpy() != ""
    touching = _shares_a_band_key(past.keys, batch.keys[active])
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
    return _NearPairs(
        new_left=left[within],
        new_right=right[within],
        hist_text=left[across],
        hist_row=hist_rows[right[across]],
        candidates=len(left),
        verified=len(plausible),
        capped_buckets=capped,
    )


def _shares_a_band_key(history: np.ndarray, batch: np.ndarray) -> np.ndarray:
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
class _Graph:
    """Connected components over batch texts (nodes [0, n_texts)) and the rows of every history
    cluster the batch touches (nodes n_texts + k, k in history rank order)."""

    component_of_text: np.ndarray
    hist_nodes: pd.DataFrame  # history rows with a "component" column
    exact_history_links: int


def _cluster(batch: _Batch, past: _History, near: _NearPairs) -> _Graph:
    n_texts = len(batch.texts)
    exact_text, exact_row = _exact_history_matches(batch, past)
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
    return _Graph(component[:n_texts], hist_nodes, len(exact_row))


def _exact_history_matches(batch: _Batch, past: _History) -> tuple[np.ndarray, np.ndarray]:
    """(batch text, history row) pairs with identical normalised text (key match, then text)."""
    text_keys = batch.text_keys
    order = np.argsort(text_keys, kind="stable")
    hist_keys = past.frame[EXACT_KEY].to_numpy(dtype=np.int64)
    slot = np.minimum(np.searchsorted(text_keys[order], hist_keys), max(len(order) - 1, 0))
    rows = np.flatnonzero(text_keys[order][slot] == hist_keys) if len(order) else slot[:0]
    texts = order[slot[rows]]
    equal = batch.texts[texts] == past.frame[NORM_TEXT].iloc[rows].astype(str).to_numpy()
    return texts[equal], rows[equal]


@dataclass
class _Outcome:
    """Per new item decisions, aligned with the batch's items."""

    cluster_id: np.ndarray
    kept: np.ndarray
    kind: np.ndarray
    kept_member: np.ndarray  # index into members
    rep: np.ndarray  # index into members
    quarantined: np.ndarray
    reasons: np.ndarray
    conflict: np.ndarray
    members: pd.DataFrame
    conflicts: pd.DataFrame
    clusters: int


def _members(batch: _Batch, graph: _Graph) -> pd.DataFrame:
    """New items then the touched history rows; ``order`` ranks history (by version, row)
    before new items (by provenance), the order in which a cluster's representative is chosen."""
    n_hist = len(graph.hist_nodes)
    new = pd.DataFrame(
        {
            "component": graph.component_of_text[batch.text_of_item],
            "order": n_hist + np.arange(len(batch.items)),
            frames.ITEM_ID: batch.items[frames.ITEM_ID].astype(str).to_numpy(),
            frames.LABEL: batch.items[frames.LABEL].astype("str").to_numpy(),
            "is_history": False,
            frames.SPLIT: None,
            frames.CLUSTER_ID: None,
            "text_node": batch.text_of_item,
            "text_code": batch.text_of_item,
        }
    )
    hist = pd.DataFrame(
        {
            "component": graph.hist_nodes["component"].to_numpy(),
            "order": np.arange(n_hist),
            frames.ITEM_ID: graph.hist_nodes[frames.ITEM_ID].astype(str).to_numpy(),
            frames.LABEL: graph.hist_nodes[frames.LABEL].astype("str").to_numpy(),
            "is_history": True,
            frames.SPLIT: graph.hist_nodes[frames.SPLIT].astype(str).to_numpy(),
            frames.CLUSTER_ID: graph.hist_nodes[frames.CLUSTER_ID].astype(str).to_numpy(),
            "text_node": len(batch.texts) + np.arange(n_hist),
            "text_code": graph.hist_nodes["text_code"].to_numpy(dtype=np.int64),
        }
    )
    return pd.concat([new, hist], ignore_index=True)


@dataclass
class _Components:
    """Per component (indexed by component label): representative member, labels, conflict."""

    rep: pd.Series  # member index
    sorted_members: pd.DataFrame
    conflicts: pd.DataFrame  # indexed by component
    hist_splits: pd.Series  # component -> its history splits, only where there are several


def _components(members: pd.DataFrame, config: DedupConfig) -> _Components:
    ordered = members.sort_values(["component", "order"], kind="stable")
    first = ordered.groupby("component", sort=True).head(1)
    rep = pd.Series(first.index.to_numpy(), index=first["component"].to_numpy())
    labelled = ordered[ordered[frames.LABEL].notna()]
    counts = labelled.groupby(["component", frames.LABEL], sort=True).size()
    distinct = counts.groupby(level=0).size()
    in_conflict = distinct.index[distinct.to_numpy() >= 2]
    rows = []
    conflicted = ordered[ordered["component"].isin(in_conflict)]
    for component, group in conflicted.groupby("component", sort=True):
        # a MultiIndex lookup: the stubs read one key as one value, not this label's sub-series
        label_counts = cast(pd.Series, counts.loc[component])
        per_label = label_counts.sort_values(ascending=False, kind="stable")
        tie = len(per_label) > 1 and per_label.iloc[0] == per_label.iloc[1]
        winner = None if config.conflict_action == "quarantine" or tie else per_label.index[0]
        if winner is not None and not bool(group["is_history"].any()):
            # component labels are integers; the stubs type a group key as any scalar
            rep[cast(int, component)] = group.index[group[frames.LABEL].to_numpy() == winner][0]
        rows.append(
            {
                "component": component,
                "n_items": len(group),
                "labels": ", ".join(f"{k}={v}" for k, v in label_counts.items()),
                "winner": winner,
                "tie": tie,
                "item_ids": ",".join(group[frames.ITEM_ID]),
            }
        )
    conflicts = pd.DataFrame(
        rows, columns=["component", "n_items", "labels", "winner", "tie", "item_ids"]
    ).set_index("component")
    history = ordered[ordered["is_history"]].drop_duplicates(["component", frames.SPLIT])
    spread = history.groupby("component", sort=True).size()
    spread_rows = history[history["component"].isin(spread.index[spread.to_numpy() >= 2])]
    hist_splits = spread_rows.groupby("component", sort=True)[frames.SPLIT].agg(
        lambda s: ", ".join(sorted(s))
    )
    return _Components(rep, ordered, conflicts, hist_splits)


def _decide(batch: _Batch, graph: _Graph, config: DedupConfig) -> _Outcome:
    members = _members(batch, graph)
    comps = _components(members, config)
    n = len(batch.items)
    component = members["component"].to_numpy()[:n]
    rep = comps.rep.reindex(component).to_numpy()
    rep_id = members[frames.ITEM_ID].to_numpy()[rep]
    persisted = members[frames.CLUSTER_ID].to_numpy()[rep]
    cluster_id = np.array(
        [
            p if isinstance(p, str) else cluster_id_for(r)
            for p, r in zip(persisted, rep_id, strict=True)
        ],
        dtype=object,
    )
    label = members[frames.LABEL].to_numpy()
    text_code = members["text_code"].to_numpy()  # equal codes <=> equal normalised texts
    same_text_as_rep = text_code[:n] == text_code[rep]
    conflict = np.isin(component, comps.conflicts.index.to_numpy())
    winner = comps.conflicts["winner"].reindex(component).to_numpy()
    resolved = conflict & pd.notna(winner)
    reasons = np.full(n, "", dtype=object)
    for i in np.flatnonzero(conflict & ~resolved):
        info = comps.conflicts.loc[component[i]]
        tie = " (tie)" if config.conflict_action == "majority" else ""
        reasons[i] = f"label_conflict: cluster {cluster_id[i]} has labels {info['labels']}{tie}"
    if config.near_action == "keep":
        splits = comps.hist_splits.reindex(component).fillna("").to_numpy()
        for i in np.flatnonzero(splits != ""):
            bridge = f"bridges_splits: cluster {cluster_id[i]} holds published items in {splits[i]}"
            reasons[i] = f"{reasons[i]}; {bridge}" if reasons[i] else bridge
    quarantined = reasons != ""
    losing = resolved & pd.notna(label[:n]) & (label[:n] != winner)
    # The member that carries each text: an item whose text an earlier member already carries
    # is an exact copy, whatever the cluster's representative is.
    carrier = _first_with_same_text(comps, np.flatnonzero(quarantined | losing))[:n]
    is_copy = carrier != np.arange(n)
    if config.near_action == "drop":
        dropped = ~quarantined & (np.arange(n) != rep)
        exact = np.where(losing, same_text_as_rep, is_copy | same_text_as_rep)
        kept_member = rep
    else:
        dropped = ~quarantined & (losing | is_copy)
        exact = np.where(losing, same_text_as_rep, True)
        kept_member = np.where(dropped & ~losing, carrier, rep)
    kind = np.full(n, "", dtype=object)
    kind[dropped] = np.where(exact[dropped], "exact", "near")
    clusters = int((members.groupby("component").size() >= 2).sum())
    return _Outcome(
        cluster_id=cluster_id,
        kept=~dropped & ~quarantined,
        kind=kind,
        kept_member=kept_member,
        rep=rep,
        quarantined=quarantined,
        reasons=reasons,
        conflict=conflict,
        members=members,
        conflicts=comps.conflicts,
        clusters=clusters,
    )


def _first_with_same_text(comps: _Components, excluded: np.ndarray) -> np.ndarray:
    """For every member, the member that carries its text: the representative if the text is
    the representative's, else the earliest member not excluded (quarantined, outvoted)."""
    members = comps.sorted_members
    index = members.index.to_numpy()
    component = members["component"].to_numpy()
    text = members["text_code"].to_numpy()
    rank = np.where(np.isin(index, comps.rep.to_numpy()), -1, members["order"].to_numpy())
    key = component * (int(text.max(initial=0)) + 1) + text
    eligible = ~np.isin(index, excluded)
    order = np.lexsort((rank[eligible], key[eligible]))
    eligible_keys = key[eligible][order]
    first = np.ones(len(eligible_keys), dtype=bool)
    first[1:] = eligible_keys[1:] != eligible_keys[:-1]
    # A sentinel past every key keeps the lookup in bounds when no member is eligible.
    carrier_keys = np.r_[eligible_keys[first], np.iinfo(np.int64).max]
    carriers = np.r_[index[eligible][order][first], -1]
    slot = np.searchsorted(carrier_keys, key)
    result = np.empty(len(members), dtype=np.int64)
    result[index] = np.where(carrier_keys[slot] == key, carriers[slot], index)
    return result


def _assemble(
    batch: _Batch,
    graph: _Graph,
    outcome: _Outcome,
    near: _NearPairs,
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
    batch: _Batch,
    graph: _Graph,
    outcome: _Outcome,
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


def _quarantine(items: pd.DataFrame, outcome: _Outcome) -> pd.DataFrame:
    rows = items.iloc[np.flatnonzero(outcome.quarantined)]
    return frames.quarantined_items(rows, STAGE, outcome.reasons[outcome.quarantined])


def _conflict_frame(outcome: _Outcome, config: DedupConfig) -> pd.DataFrame:
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


def _index(batch: _Batch, outcome: _Outcome, scheme: LshScheme) -> pd.DataFrame:
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

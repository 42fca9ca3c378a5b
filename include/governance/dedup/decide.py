"""What happens to each new item of a cluster: the representative (history first, then by
provenance), label conflicts (quarantined, or settled by majority), and which item is dropped
as an exact or near copy of which."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from governance import frames
from governance.dedup.inputs import Batch, DedupConfig, cluster_id_for
from governance.dedup.match import Graph
from governance.reasons import Reason, ReasonKind


@dataclass
class Outcome:
    """Per new item decisions, aligned with the batch's items."""

    cluster_id: np.ndarray
    kept: np.ndarray
    kind: np.ndarray
    kept_member: np.ndarray  # index into members
    rep: np.ndarray  # index into members
    quarantined: np.ndarray
    reasons: np.ndarray  # per new item, the list of its quarantine reasons (empty: not refused)
    conflict: np.ndarray
    members: pd.DataFrame
    conflicts: pd.DataFrame
    clusters: int


def _members(batch: Batch, graph: Graph) -> pd.DataFrame:
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


def _quarantine_reasons(
    comps: _Components,
    component: np.ndarray,
    cluster_id: np.ndarray,
    unresolved: np.ndarray,
    config: DedupConfig,
) -> np.ndarray:
    """Per new item, why it is quarantined ("" when it is not): a label conflict no majority
    settles, or (keeping near duplicates) a cluster whose published items lie in two splits."""
    reasons: list[list[Reason]] = [[] for _ in range(len(component))]
    for i in np.flatnonzero(unresolved):
        info = comps.conflicts.loc[component[i]]
        tie = " (tie)" if config.conflict_action == "majority" else ""
        detail = f"cluster {cluster_id[i]} has labels {info['labels']}{tie}"
        reasons[i].append(Reason(ReasonKind.CONFLICT, "label_conflict", message=detail))
    if config.near_action == "keep":
        splits = comps.hist_splits.reindex(component).fillna("").to_numpy()
        for i in np.flatnonzero(splits != ""):
            detail = f"cluster {cluster_id[i]} holds published items in {splits[i]}"
            reasons[i].append(Reason(ReasonKind.LEAKAGE, "bridges_splits", message=detail))
    held = np.empty(len(reasons), dtype=object)
    held[:] = reasons
    return held


def decide(batch: Batch, graph: Graph, config: DedupConfig) -> Outcome:
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
    reasons = _quarantine_reasons(comps, component, cluster_id, conflict & ~resolved, config)
    quarantined = np.fromiter((bool(row) for row in reasons), dtype=bool, count=len(reasons))
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
    return Outcome(
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

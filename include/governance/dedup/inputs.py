"""What deduplication works on: its settings, the day's batch of items (distinct normalised
texts, their band keys and sketches) and the published history (ranked, with band keys reused
where today's LSH scheme made them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from governance import frames
from governance.contracts import DedupSpec
from governance.dedup.minhash import (
    DEFAULT_MAX_BUCKET,
    RECALL_WEIGHTS,
    LshScheme,
    band_keys,
    band_keys_and_sketch,
    pairwise_jaccard,
)
from governance.dedup.textnorm import normalise_texts, shingle_sets, stable_hash64
from governance.errors import InvalidInputError

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


def cluster_id_for(item_id: str) -> str:
    """Stable cluster id derived from the representative's item id."""
    return "c" + hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class Batch:
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
    def build(cls, items: pd.DataFrame, scheme: LshScheme) -> Batch:
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
class History:
    """Published items, ranked by (version, row): the earliest is a cluster's representative."""

    frame: pd.DataFrame  # HISTORY_COLUMNS + rank, exact key
    keys: np.ndarray  # (n, bands) int64

    @classmethod
    def build(cls, history: pd.DataFrame | None, scheme: LshScheme) -> History:
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
        return cls(out, history_keys(frame, norm, scheme))


def history_keys(frame: pd.DataFrame, norm: list[str], scheme: LshScheme) -> np.ndarray:
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

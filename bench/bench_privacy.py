"""The privacy scan against presidio-analyzer's recognizers, side by side on the same texts.

Demo reviews, a share of them carrying one injected value of known entity
(``governance.demo.pii.labelled_corpus``); both scanners look for e-mail, phone (the same
regions), credit card, IBAN, IP address and US SSN (presidio has no generic secret recognizer,
so secrets are scored for ours alone). Prints rows/s of each on the same rows, and precision and
recall per entity against the truth; ours also on the whole corpus.

Usage: PYTHONPATH=include python bench/bench_privacy.py [--rows N] [--presidio-rows N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from governance import privacy as P
from governance.demo.pii import MAKERS, SCAN_EVERYTHING, labelled_corpus
from governance.privacy_reference import PRESIDIO_ENTITIES, presidio_scanner

RESULTS = Path(__file__).parent / "results" / "privacy.json"
SPEC = SCAN_EVERYTHING
Pairs = set[tuple[int, str]]  # (row, entity)


def scores(found: Pairs, truth: Pairs, entities: list[str]) -> dict[str, dict[str, float]]:
    table = {}
    for entity in entities:
        f = {pair for pair in found if pair[1] == entity}
        t = {pair for pair in truth if pair[1] == entity}
        hits = len(f & t)
        table[entity] = {
            "precision": round(hits / len(f), 4) if f else 1.0,
            "recall": round(hits / len(t), 4) if t else 1.0,
        }
    return table


def timed_scan(texts: list[str]) -> tuple[float, Pairs]:
    started = time.perf_counter()
    result = P.scan(pd.Series(texts, dtype="str"), SPEC)
    return time.perf_counter() - started, {(f.row, f.entity) for f in result.findings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--presidio-rows", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=0.04)
    args = parser.parse_args()
    texts, truth = labelled_corpus(args.rows, args.rate)
    seconds, ours = timed_scan(texts)
    print(
        f"ours: {args.rows:,} rows in {seconds:.2f} s = {args.rows / seconds:,.0f} rows/s; "
        f"{len(truth):,} values injected; precision and recall by entity:"
    )
    report: dict = {
        "rows": args.rows,
        "rate": args.rate,
        "ours": {"seconds": seconds, "rows_per_s": args.rows / seconds},
        "ours_scores": scores(ours, truth, list(MAKERS)),
    }
    print("  ours    ", json.dumps(report["ours_scores"]))
    n = min(args.presidio_rows, args.rows)
    sample, sample_truth = texts[:n], {pair for pair in truth if pair[0] < n}
    ours_s, ours_found = timed_scan(sample)
    scan = presidio_scanner(SPEC.phone_regions)
    started = time.perf_counter()
    found = {(row, entity) for row, text in enumerate(sample) for entity in scan(text)}
    presidio_s = time.perf_counter() - started
    compared = list(PRESIDIO_ENTITIES)
    report["side_by_side"] = {
        "rows": n,
        "presidio_s": presidio_s,
        "ours_s": ours_s,
        "speedup": presidio_s / ours_s,
        "presidio_scores": scores(found, sample_truth, compared),
        "ours_scores": scores(ours_found, sample_truth, compared),
    }
    print(
        f"the first {n:,} rows side by side: presidio {presidio_s:.2f} s "
        f"({n / presidio_s:,.0f} rows/s), ours {ours_s:.3f} s ({n / ours_s:,.0f} rows/s): "
        f"{presidio_s / ours_s:.0f}x"
    )
    print("  presidio", json.dumps(report["side_by_side"]["presidio_scores"]))
    print("  ours    ", json.dumps(report["side_by_side"]["ours_scores"]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

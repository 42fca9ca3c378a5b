"""The labeling audit on a large day: 100,000 items with three votes each.

Target: <= 60 s on a 2-core machine, the out-of-fold baseline and its cross-validation included.
Items and votes are generated in memory (review templates, twelve annotators of whom two are
unreliable, 3% of items flipped), so the figures cover the audit alone; its share of a whole
nightly run comes from bench_pipeline.py. Label-error detection is scored against the items whose
majority label is not their true class (the flipped ones, and those two unreliable annotators
outvoted).

    python bench/bench_audit.py [--items 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import pandas as pd

from governance.audit import run_audit
from governance.audit.agreement import agreement_summary, pairwise_cohen_kappa
from governance.audit.consensus import build_consensus
from governance.audit.drift import compare_versions
from governance.audit.label_errors import find_suspected_errors
from governance.contracts import load_contract
from governance.demo.text import CLASSES, compose_review

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "include" / "contracts" / "demo_reviews.yaml"
ANNOTATORS = [f"ann_{n:02d}" for n in range(1, 13)]
RANDOM_VOTER, CONFUSED_VOTER = "ann_04", "ann_09"
CONFUSION = {"positive": "neutral", "neutral": "positive", "negative": "neutral"}


def generate(n_items: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Items (majority label), votes, and the ids of items whose label is wrong."""
    rng = random.Random(seed)
    items, votes, wrong_labels = [], [], set()
    for number in range(n_items):
        item_id = f"it-{seed}-{number:07d}"
        truth = rng.choice(CLASSES)
        text = compose_review(rng, truth).text
        wrong = rng.random() < 0.03
        shown = rng.choice([c for c in CLASSES if c != truth]) if wrong else truth
        given = []
        for annotator in rng.sample(ANNOTATORS, 3):
            label = shown
            if annotator == RANDOM_VOTER:
                label = rng.choice(CLASSES)
            elif annotator == CONFUSED_VOTER and rng.random() < 0.8:
                label = CONFUSION[shown]
            elif rng.random() < 0.04:
                label = rng.choice(CLASSES)
            given.append(label)
            votes.append((item_id, annotator, label))
        top = max(set(given), key=given.count)
        label = top if given.count(top) >= 2 else None
        if label is not None and label != truth:
            wrong_labels.add(item_id)
        items.append((item_id, text, label, "train"))
    item_frame = pd.DataFrame(items, columns=["item_id", "text", "label", "split"])
    vote_frame = pd.DataFrame(votes, columns=["item_id", "annotator", "label"])
    return item_frame, vote_frame, wrong_labels


def timed(results: dict[str, float], name: str, call):
    started = time.perf_counter()
    value = call()
    results[name] = time.perf_counter() - started
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    contract = load_contract(CONTRACT)
    classes = list(contract.labels.classes)
    items, votes, wrong = generate(args.items, args.seed)
    previous, _, _ = generate(args.items, args.seed + 1)

    parts: dict[str, float] = {}
    consensus = timed(
        parts,
        "consensus (auto: 4 aggregators x 10 folds)",
        lambda: build_consensus(items, votes, classes),
    )
    timed(parts, "agreement (alpha, Fleiss)", lambda: agreement_summary(votes, classes))
    timed(parts, "pairwise Cohen kappa", lambda: pairwise_cohen_kappa(votes, classes))
    errors = timed(
        parts,
        "label errors (TF-IDF+LR 5-fold, cleanlab)",
        lambda: find_suspected_errors(items, classes, votes, consensus.consensus, 5, 0),
    )
    timed(parts, "drift", lambda: compare_versions(items, previous, classes, "previous"))
    whole: dict[str, float] = {}
    result = timed(
        whole, "run_audit", lambda: run_audit(contract, items, votes, previous, "previous")
    )

    found = set(errors.queue["item_id"])
    flagged = result.summary["annotators"]["flagged"]
    report = {
        "items": args.items,
        "votes": len(votes),
        "parts_s": parts,
        "run_audit_s": whole["run_audit"],
        "wrong_labels": len(wrong),
        "label_error_precision": len(found & wrong) / len(found) if found else None,
        "label_error_recall": len(found & wrong) / len(wrong),
        "flagged_annotators": flagged,
        "krippendorff_alpha": result.summary["agreement"]["krippendorff_alpha"],
    }
    print(f"audit of {args.items:,} items, {len(votes):,} votes")
    for name, seconds in parts.items():
        print(f"  {name:42} {seconds:6.1f} s")
    print(f"  {'run_audit, all of it':42} {whole['run_audit']:6.1f} s  (target <= 60 s)")
    print(
        f"  wrong labels ({len(wrong):,}): precision {report['label_error_precision']:.3f}, "
        f"recall {report['label_error_recall']:.3f}; flagged annotators {flagged}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

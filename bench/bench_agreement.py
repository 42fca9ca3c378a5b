"""Agreement statistics: governance.audit.agreement against krippendorff, statsmodels and sklearn.

Synthetic votes: each item gets --votes distinct annotators out of --annotators, each annotator
right with their own accuracy; --drop removes a share of votes (as quarantine does upstream), so
items carry varying numbers of votes. Each side is timed on its natural input, preparation excluded:
alpha and Fleiss from our counts matrix (``vote_counts``, timed on its own line) against
krippendorff on the annotators x items matrix and statsmodels on the modal-vote counts table;
our pairwise Cohen from the annotations frame (encoding included) against sklearn on ready-made
per-pair label arrays.

    PYTHONPATH=include python bench/bench_agreement.py --items 100000 --annotators 12 --votes 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from governance.audit.agreement import (
    agreement_summary,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    modal_vote_items,
    pairwise_cohen_kappa,
    per_class_alpha,
    per_class_fleiss_kappa,
    vote_counts,
)

RESULTS = Path(__file__).parent / "results" / "agreement.json"
CLASSES = ["positive", "neutral", "negative", "mixed"]


def synthetic_votes(
    n_items: int, n_annotators: int, votes: int, drop: float, seed: int
) -> pd.DataFrame:
    """One row per vote; annotators differ in accuracy (0.55 .. 0.95) so kappas differ too."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(len(CLASSES), size=n_items)
    chosen = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :votes]
    accuracy = np.linspace(0.55, 0.95, n_annotators)[chosen]
    noise = rng.integers(len(CLASSES), size=chosen.shape)
    labels = np.where(rng.random(chosen.shape) < accuracy, truth[:, None], noise)
    keep = rng.random(chosen.shape) >= drop
    items = np.repeat(np.arange(n_items), votes).reshape(chosen.shape)
    return pd.DataFrame(
        {
            "item_id": pd.Series(items[keep]).map("item{:07d}".format).astype("str"),
            "annotator": pd.Series(chosen[keep]).map("ann{:02d}".format).astype("str"),
            "label": pd.Series(np.array(CLASSES)[labels[keep]]).astype("str"),
        }
    )


def best_of(repeat: int, work: Callable[[], object]) -> tuple[float, object]:
    """Fastest of `repeat` runs and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def reliability_matrix(annotations: pd.DataFrame) -> np.ndarray:
    """annotators x items of class indices, NaN where missing: krippendorff's input."""
    codes = annotations["label"].map({name: float(i) for i, name in enumerate(CLASSES)})
    wide = annotations.assign(code=codes).pivot(index="annotator", columns="item_id", values="code")
    return wide.to_numpy(dtype=float)


def pair_label_arrays(annotations: pd.DataFrame) -> dict[tuple[str, str], tuple]:
    """For each annotator pair, both label arrays over their common items: sklearn's input."""
    wide = annotations.pivot(index="item_id", columns="annotator", values="label")
    arrays = {}
    for a, b in itertools.combinations(sorted(wide.columns), 2):
        both = wide[[a, b]].dropna()
        arrays[(a, b)] = (both[a].to_numpy(), both[b].to_numpy())
    return arrays


def reference_alphas(data: np.ndarray) -> list[float]:
    overall = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    per_class = [
        krippendorff.alpha(
            reliability_data=np.where(np.isnan(data), np.nan, (data == k).astype(float)),
            level_of_measurement="nominal",
        )
        for k in range(len(CLASSES))
    ]
    return [float(overall), *map(float, per_class)]


def reference_fleiss(table: np.ndarray) -> list[float]:
    raters = table.sum(axis=1)
    per_class = [
        sm_fleiss_kappa(np.column_stack([table[:, k], raters - table[:, k]]))
        for k in range(len(CLASSES))
    ]
    return [float(sm_fleiss_kappa(table)), *map(float, per_class)]


def reference_cohen(arrays: dict[tuple[str, str], tuple], min_overlap: int) -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [float(cohen_kappa_score(a, b)) for a, b in arrays.values() if len(a) >= min_overlap]


def ours_alphas(counts: np.ndarray) -> list[float]:
    return [krippendorff_alpha_nominal(counts), *per_class_alpha(counts, CLASSES).values()]


def ours_fleiss(counts: np.ndarray) -> list[float]:
    return [fleiss_kappa(counts)[0], *per_class_fleiss_kappa(counts, CLASSES).values()]


def max_abs_diff(ours: list[float], reference: list[float]) -> float:
    return float(np.nanmax(np.abs(np.asarray(ours) - np.asarray(reference))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=12)
    parser.add_argument("--votes", type=int, default=3, help="votes per item before the drop")
    parser.add_argument("--drop", type=float, default=0.02, help="share of votes removed")
    parser.add_argument("--min-overlap", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best counts")
    args = parser.parse_args()
    if not 2 <= args.votes <= args.annotators:
        parser.error("--votes must lie between 2 and --annotators")
    annotations = synthetic_votes(args.items, args.annotators, args.votes, args.drop, seed=1)
    counts_s, (_, counts) = best_of(args.repeat, lambda: vote_counts(annotations, CLASSES))
    reliability = reliability_matrix(annotations)
    modal_table = counts[modal_vote_items(counts)]
    pair_arrays = pair_label_arrays(annotations)

    comparisons = {
        "alpha (overall + per class)": (
            lambda: ours_alphas(counts),
            lambda: reference_alphas(reliability),
        ),
        "fleiss (overall + per class)": (
            lambda: ours_fleiss(counts),
            lambda: reference_fleiss(modal_table),
        ),
        "cohen (all pairs)": (
            lambda: pairwise_cohen_kappa(annotations, CLASSES, args.min_overlap)["kappa"].tolist(),
            lambda: reference_cohen(pair_arrays, args.min_overlap),
        ),
    }
    rows = []
    for name, (ours, reference) in comparisons.items():
        our_s, our_values = best_of(args.repeat, ours)
        ref_s, ref_values = best_of(1, reference)
        rows.append(
            {
                "statistic": name,
                "ours_s": round(our_s, 4),
                "reference_s": round(ref_s, 4),
                "speedup": round(ref_s / our_s, 1),
                "max_abs_diff": max_abs_diff(our_values, ref_values),
            }
        )
    summary_s, summary = best_of(args.repeat, lambda: agreement_summary(annotations, CLASSES))

    print(
        f"{args.items} items, {args.annotators} annotators, {args.votes} votes/item, "
        f"{len(annotations)} votes after a {args.drop:.0%} drop, {len(pair_arrays)} annotator pairs"
    )
    header = f"{'statistic':<30}{'ours s':>10}{'reference s':>13}{'speed-up':>10}{'max |diff|':>12}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['statistic']:<30}{row['ours_s']:>10.4f}{row['reference_s']:>13.4f}"
            f"{row['speedup']:>9.1f}x{row['max_abs_diff']:>12.1e}"
        )
    print(f"{'vote_counts (shared encoding)':<30}{counts_s:>10.4f}")
    print(f"{'agreement_summary (end to end)':<30}{summary_s:>10.4f}")
    print(
        f"alpha {summary['krippendorff_alpha']:.4f}, fleiss {summary['fleiss_kappa']:.4f} "
        f"on {summary['fleiss_items']} items"
    )
    figures = {
        "items": args.items,
        "annotators": args.annotators,
        "votes_per_item": args.votes,
        "drop": args.drop,
        "votes": len(annotations),
        "pairs": len(pair_arrays),
        "comparisons": rows,
        "vote_counts_s": round(counts_s, 4),
        "agreement_summary_s": round(summary_s, 4),
        "summary": summary,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

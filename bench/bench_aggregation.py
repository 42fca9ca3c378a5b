"""Consensus aggregators on generated crowds whose truth is known, with plurality as the floor.

Five regimes (governance.demo.crowd.REGIMES): 3 to 10 classes, a long tail of workers with fewer
than five items, spammers, weak one-coin and class-confused workers, items without an absolute
majority. Each regime's accuracy is the mean over --seeds crowds of 400 items. ``auto`` is what
the nightly audit runs by default: plurality unless a model's labels predict held-out votes
better by a standard error. Target: auto >= plurality on every regime and within 0.5 points of
the best aggregator. Then our EM for one-coin and full Dawid-Skene against crowd-kit's classes,
side by side on each regime's first crowd.

    PYTHONPATH=include python bench/bench_aggregation.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from governance.audit import aggregators as A
from governance.audit.aggregators import AGGREGATORS
from governance.demo.aggregation import RegimeAccuracy, measure_calibration, measure_regime
from governance.demo.crowd import REGIMES, generate_crowd

ROOT = Path(__file__).resolve().parents[1]


def markdown_table(results: list[RegimeAccuracy]) -> str:
    columns = [*AGGREGATORS, "auto"]
    lines = [
        "| regime | no majority | " + " | ".join(columns) + " | auto chose |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for result in results:
        best = result.best
        cells = [
            f"**{result.accuracy[name]:.2f}**"
            if name != "auto" and result.accuracy[name] == best
            else f"{result.accuracy[name]:.2f}"
            for name in columns
        ]
        chose = ", ".join(f"{name} {count}" for name, count in sorted(result.chosen.items()))
        lines.append(
            f"| {result.regime.name} | {result.no_majority_share:.1f}% | "
            + " | ".join(cells)
            + f" | {chose} |"
        )
    return "\n".join(lines)


def best_of(fit, votes: A.Votes, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit(votes)
        timings.append(time.perf_counter() - started)
    return min(timings)


def against_crowdkit() -> dict[str, dict[str, float]]:
    """Seconds of our EM and of crowd-kit's classes on each regime's first crowd (best of 3),
    and the largest difference between their class distributions."""
    pairs = {"dawid_skene": A._dawid_skene, "one_coin": A._one_coin}
    figures = {}
    for regime in REGIMES:
        crowd = generate_crowd(regime, 0)
        votes = A.Votes.of(crowd.votes, crowd.classes)
        for name, reference in pairs.items():
            mine, theirs_fit = A.FITTERS[name], A._crowdkit(reference)
            ours, theirs = best_of(mine, votes), best_of(theirs_fit, votes)
            difference = abs(mine(votes) - theirs_fit(votes))
            figures[f"{regime.name}, {name}"] = {
                "ours_s": round(ours, 4),
                "crowdkit_s": round(theirs, 4),
                "speedup": round(theirs / ours, 1),
                "max_probability_difference": float(difference.max()),
            }
            print(
                f"{regime.name:28} {name:12} ours {ours * 1000:7.1f} ms, crowd-kit "
                f"{theirs * 1000:7.1f} ms: {theirs / ours:6.1f}x; max |p - p_ref| "
                f"{difference.max():.2e}",
                flush=True,
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    results = []
    for regime in REGIMES:
        started = time.perf_counter()
        results.append(measure_regime(regime, args.seeds))
        print(f"{regime.name}: {time.perf_counter() - started:.1f} s", flush=True)
    print(markdown_table(results))
    report = {
        result.regime.name: {
            "accuracy": {name: round(value, 3) for name, value in result.accuracy.items()},
            "auto_chose": result.chosen,
            "auto_minus_plurality": round(
                result.accuracy["auto"] - result.accuracy["plurality"], 3
            ),
            "auto_behind_best": round(result.auto_gap, 3),
        }
        for result in results
    }
    for name, figures in report.items():
        print(
            f"{name}: auto - plurality {figures['auto_minus_plurality']:+.2f} points, "
            f"auto behind the best {figures['auto_behind_best']:.2f} points"
        )
    calibration = {}
    for regime in REGIMES:
        measured = measure_calibration(regime)
        calibration[regime.name] = {
            "one_coin_posterior": round(measured.posterior, 4),
            "vote_share": round(measured.vote_share, 4),
        }
        print(
            f"{regime.name}: expected calibration error of the one-coin posterior "
            f"{measured.posterior:.3f}, of the vote share {measured.vote_share:.3f}"
        )
    speed = against_crowdkit()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "aggregation.json").write_text(
        json.dumps({"accuracy": report, "calibration": calibration, "speed": speed}, indent=2)
    )


if __name__ == "__main__":
    main()

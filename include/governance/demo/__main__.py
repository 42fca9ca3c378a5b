"""Command line of the demo feed: ``python -m governance.demo feed ...`` writes daily
partitions and their truth, ``python -m governance.demo wide PATH`` the benchmarks' wide CSV."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from governance.demo.feed import DATASET, generate_feed, write_wide_csv


def main(argv: list[str] | None = None) -> None:
    """Command line: write the demo feed, or the wide CSV that the benchmarks read."""
    parser = argparse.ArgumentParser(
        prog="python -m governance.demo", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    feed = commands.add_parser("feed", help="daily JSON Lines partitions plus their truth")
    feed.add_argument("--landing-root", type=Path, required=True)
    feed.add_argument("--truth-root", type=Path, required=True)
    feed.add_argument("--start", type=date.fromisoformat, required=True)
    feed.add_argument("--days", type=int, default=3)
    feed.add_argument("--items-per-day", type=int, default=400)
    feed.add_argument("--seed", type=int, default=7)
    feed.add_argument("--dataset", default=DATASET)
    wide = commands.add_parser("wide", help="one wide CSV for the benchmarks")
    wide.add_argument("path", type=Path)
    wide.add_argument("--rows", type=int, default=1_000_000)
    wide.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "wide":
        print(write_wide_csv(args.path, args.rows, args.seed))
        return
    for truth in generate_feed(
        args.landing_root,
        args.truth_root,
        args.start,
        args.days,
        args.items_per_day,
        args.seed,
        args.dataset,
    ):
        print(
            f"{truth.day}: {truth.rows} lines, {len(truth.unparseable)} unparseable, "
            f"{len(truth.schema_violations)} schema violations, {len(truth.dirty_labels)} dirty "
            f"labels, {len(truth.exact_duplicates)} exact and {len(truth.near_duplicates)} near "
            f"duplicates, {len(truth.conflicts)} in conflicts"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

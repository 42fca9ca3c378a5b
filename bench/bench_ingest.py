"""Time parse + validate of one generated partition (1,000,000 records by default).

Usage: PYTHONPATH=include python bench/bench_ingest.py [--rows N] [--format csv|jsonl]
The nightly budget is 120 s for 1M rows; ingest should sustain >= 150,000 records/s.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from governance.contracts import Contract
from governance.ingest import read_partition

WORDS = [
    "free",
    "call",
    "now",
    "win",
    "prize",
    "meeting",
    "later",
    "home",
    "lunch",
    "ok",
    "sure",
    "thanks",
    "reply",
    "text",
]


def contract_for(fmt: str) -> Contract:
    return Contract.model_validate(
        {
            "name": "bench",
            "source": {"format": fmt, "pattern": f"*.{fmt}"},
            "text": {"column": "text", "max_length": 1000},
            "labels": {"column": "label", "classes": ["ham", "spam"]},
        }
    )


def write_partition(folder: Path, fmt: str, rows: int) -> Path:
    rng = random.Random(0)
    path = folder / f"part-0.{fmt}"
    with path.open("w", encoding="utf-8") as handle:
        if fmt == "csv":
            handle.write("label,text\n")
        for number in range(rows):
            label = rng.choice(["ham", "Ham", "spam", "SPAM"])
            text = " ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + f" {number}"
            if fmt == "csv":
                handle.write(f'{label},"{text}"\n')
            else:
                handle.write(json.dumps({"label": label, "text": text}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        size_mb = write_partition(Path(tmp), args.format, args.rows).stat().st_size / 1e6
        started = time.perf_counter()
        result = read_partition(contract_for(args.format), Path(tmp))
        seconds = time.perf_counter() - started
    print(
        f"{args.format}: {result.rows_in:,} records ({size_mb:.0f} MB) in "
        f"{seconds:.2f} s = {result.rows_in / seconds:,.0f} records/s; "
        f"items {len(result.items):,}, quarantined {len(result.quarantine):,}"
    )


if __name__ == "__main__":
    main()

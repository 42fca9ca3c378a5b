"""The nightly run on a large generated day: time per stage, rows/s, peak RSS, audit share.

Targets: ingest + validate + exact and near dedup + split of 1,000,000 rows in <= 120 s with peak
RSS <= 3 GB on a 2-core machine; the labeling audit of 100,000 items in <= 60 s. The feed is
generated in a separate process first, so the peak RSS measured here is the pipeline's own.

    python bench/bench_pipeline.py [--rows 1000000] [--workdir /tmp/bench-pipeline]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from governance.contracts import load_contract
from governance.pipeline import DayRun
from governance.stages import STAGES, stage_named

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "bench" / "contracts" / "bench_wide.yaml"
DAY = "2026-01-01"


def generate(path: Path, rows: int, seed: int) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys; from pathlib import Path; from governance.demo.feed import write_wide_csv; "
        f"write_wide_csv(Path({str(path)!r}), {rows}, seed={seed})"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-pipeline"))
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    run = DayRun(load_contract(CONTRACT), day=DAY, root=args.workdir, run_id="bench")
    gen_s = generate(run.landing_dir / "part-000.csv", args.rows, args.seed)

    timings: dict[str, float] = {}
    # the data path: every stage up to the split (the audit, gate and publish come after it)
    data_stages = [stage.name for stage in STAGES[: STAGES.index(stage_named("split")) + 1]]
    for stage in STAGES:
        started = time.perf_counter()
        result = stage(run)
        timings[stage.name] = time.perf_counter() - started
        if stage.name == data_stages[-1]:
            data_path_rss = peak_rss_mb()
    total = sum(timings[s] for s in data_stages)
    nightly = sum(timings.values())
    cons = result["conservation"]
    report = {
        "rows": args.rows,
        "generate_s": gen_s,
        "stages_s": timings,
        "rows_per_s": {k: args.rows / v for k, v in timings.items()},
        "ingest_to_split_s": total,
        "nightly_s": nightly,
        "audited_items": result["audit"]["items"],
        "audit_share": timings["audit"] / nightly,
        "gate": result["gate"]["status"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_ingest_to_split_mb": data_path_rss,
        "conservation": cons,
        "duplicates": result["counts"]["duplicates"],
        "quarantined": result["counts"]["quarantined"]["total"],
    }
    print(f"rows {args.rows:,} (generated in {gen_s:.1f} s, separate process)")
    for name, seconds in timings.items():
        print(f"  {name:16} {seconds:7.1f} s  {args.rows / seconds:12,.0f} rows/s")
    print(f"  ingest..split    {total:7.1f} s  (target <= 120 s)")
    print(
        f"  audit            {timings['audit']:7.1f} s  on {result['audit']['items']:,} items, "
        f"{timings['audit'] / nightly:.0%} of the nightly run ({nightly:.1f} s)"
    )
    print(f"  peak RSS         {data_path_rss:7.0f} MB through the split (target <= 3072 MB)")
    print(f"                   {report['peak_rss_mb']:7.0f} MB through publish")
    print(f"  conservation     {'holds' if cons['holds'] else 'VIOLATED'}: {cons}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""How long each DAG file takes to parse in a fresh process, beyond importing airflow.sdk.

The dag-processor re-parses DAG files all day, so each must stay cheap (target <= 0.3 s).

    python bench/bench_dag_parse.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, runpy, sys, time
sys.path[:0] = [{plugins!r}, {dags!r}]
t0 = time.perf_counter()
import airflow.sdk  # noqa: F401
t1 = time.perf_counter()
runpy.run_path({path!r})
t2 = time.perf_counter()
print(json.dumps({{"sdk_s": t1 - t0, "file_s": t2 - t1}}))
"""


def measure(path: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        code = PROBE.format(plugins=str(ROOT / "plugins"), dags=str(ROOT / "dags"), path=str(path))
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "sdk_import_s": statistics.median(r["sdk_s"] for r in runs),
        "file_parse_s": statistics.median(r["file_s"] for r in runs),
        "file_parse_max_s": max(r["file_s"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {p.name: measure(p, args.repeats) for p in sorted((ROOT / "dags").glob("*.py"))}
    print(f"{'DAG file':30} {'airflow.sdk':>12} {'file (median)':>14} {'file (max)':>11}")
    for name, r in results.items():
        print(
            f"{name:30} {r['sdk_import_s']:11.3f}s {r['file_parse_s']:13.3f}s "
            f"{r['file_parse_max_s']:10.3f}s"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dag_parse.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

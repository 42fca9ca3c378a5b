"""A night labelled by a large crowd: 500 items, 1,000 annotators of very uneven volume.

Target: the version's report renders in <= 5 s and stays under 5 MB, whatever the crowd's size:
it draws the flagged and the least accurate annotators one by one (the contract's
audit.detail_annotators) and lists everyone in one table. The night runs through every stage
(timed one by one); the report is then rendered again from the published version alone, so its
time is the report's and not the tables' writing.

    python bench/bench_report.py [--items 500] [--annotators 1000] [--votes 5]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

from governance.contracts import Contract, load_contract
from governance.demo.text import CLASSES, compose_review
from governance.layout import DatasetLayout
from governance.manifest import read_version_manifest
from governance.pipeline import DayRun
from governance.report import render_report
from governance.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-12-01"


def crowd_contract() -> Contract:
    """The demo contract, with annotator names of the generated crowd."""
    settings = load_contract(ROOT / "include" / "contracts" / "demo_reviews.yaml").model_dump()
    for check in settings["checks"]:
        if check["column"] == "annotator":
            check["pattern"] = "^w[0-9]{4}$"
    settings |= {"start_date": DAY, "landing": settings["landing"] | {"ready_marker": None}}
    return Contract.model_validate(settings)


def write_votes(folder: Path, items: int, annotators: int, votes: int, seed: int) -> int:
    """A long-layout day: each item voted on by ``votes`` workers drawn with weights 1/sqrt(rank)
    (a few prolific workers, a long tail with one or two items); a tenth of them vote at random."""
    rng = random.Random(seed)
    workers = [f"w{n:04d}" for n in range(annotators)]
    weights = [(rank + 1) ** -0.5 for rank in range(annotators)]
    spammers = set(rng.sample(workers, annotators // 10))
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    with (folder / "export-001.jsonl").open("w", encoding="utf-8") as handle:
        for number in range(items):
            truth = rng.choice(CLASSES)
            review = compose_review(rng, truth)
            chosen: set[str] = set()
            while len(chosen) < votes:
                chosen.add(rng.choices(workers, weights)[0])
            for worker in sorted(chosen):
                label = rng.choice(CLASSES) if worker in spammers else truth
                record = {
                    "item_id": f"it-{number:05d}",
                    "text": review.text,
                    "product": review.product,
                    "annotator": worker,
                    "label": label,
                }
                handle.write(json.dumps(record) + "\n")
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--annotators", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=5)
    args = parser.parse_args()
    contract = crowd_contract()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        layout = DatasetLayout(root, contract.name)
        rows = write_votes(layout.landing(DAY), args.items, args.annotators, args.votes, 7)
        run = DayRun(contract=contract, day=DAY, root=root, run_id="bench")
        stage_seconds = {}
        for stage in STAGES:
            started = time.perf_counter()
            stage(run)
            stage_seconds[stage.name] = round(time.perf_counter() - started, 2)
        version = layout.version(DAY)
        manifest = read_version_manifest(version).model_copy(update={"outputs": None})
        tables = {path.stem: pd.read_parquet(path) for path in sorted(version.glob("*.parquet"))}
        started = time.perf_counter()
        html = render_report(manifest, tables, detail_annotators=contract.audit.detail_annotators)
        report_seconds = time.perf_counter() - started
    quality = tables["annotator_quality"]
    result = {
        "items": args.items,
        "votes": rows,
        "annotators_who_voted": int(quality["annotator"].nunique()),
        "annotators_with_under_5_items": int((quality["n_items"] < 5).sum()),
        "stage_seconds": stage_seconds,
        "report_seconds": round(report_seconds, 2),
        "report_mb": round(len(html.encode("utf-8")) / 1e6, 2),
        "images": html.count("<img "),
        "detail_annotators": contract.audit.detail_annotators,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

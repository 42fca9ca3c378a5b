"""DDP over 2 CPU processes (gloo) against 1 process on the demo data: the same trial settings
(the global batch unchanged), several seeds, the best validation macro-F1, the test macro-F1 of
the best checkpoint, and the wall time of each.

Two processes see the rows one process sees at every step, but each draws its own dropout
masks, so the two differ by training noise; the seeds measure how large that noise is.

    python bench/bench_ddp.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
from bench_search import DATASET, demo_snapshot

from governance.contracts import contracts_dir, load_contract
from governance.finetune import FinetuneRequest
from governance.finetune.data import eval_loader, tokenize_split
from governance.finetune.encoder import load_tokenizer
from governance.finetune.evaluation import evaluate_predictions
from governance.finetune.training import (
    TrialConfig,
    load_trained,
    predict_probabilities,
    train_trial,
)

RESULTS = Path(__file__).parent / "results" / "ddp.json"


def test_macro_f1(snapshot: Path, checkpoint: Path, config: TrialConfig) -> float:
    model = load_trained(checkpoint)
    classes = list(model.hparams["classes"])
    test = pd.read_parquet(snapshot / "test.parquet")
    split = tokenize_split(test, load_tokenizer(), classes, config.max_seq_length, "test")
    probabilities = predict_probabilities(model, eval_loader(split, config.batch_size))
    labels = pd.Index(classes).get_indexer(test["label"])
    return float(evaluate_predictions(labels, probabilities, classes)["macro_f1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--items-per-day", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    contract = load_contract(contracts_dir() / f"{DATASET}.yaml")
    base = FinetuneRequest.from_contract(contract, accelerator="cpu", epochs=args.epochs).trial
    runs: dict[str, list[dict]] = {"1 process": [], "2 processes (DDP, gloo)": []}
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        work = Path(tmp)
        print(f"publishing {args.days} demo nights of {args.items_per_day} items ...", flush=True)
        snapshot = demo_snapshot(work / "data", args.days, args.items_per_day)
        for seed in args.seeds:
            for (name, rows), devices in zip(runs.items(), (1, 2), strict=True):
                config = replace(base, seed=seed, devices=devices)
                started = time.perf_counter()
                result = train_trial(snapshot, config, work / f"{devices}_{seed}")
                seconds = time.perf_counter() - started
                row = {
                    "seed": seed,
                    "best_val_macro_f1": result.best_val_macro_f1,
                    "test_macro_f1": test_macro_f1(snapshot, result.best_checkpoint, config),
                    "seconds": seconds,
                    "global_step": result.global_step,
                }
                rows.append(row)
                print(
                    f"seed {seed} {name:24s} val {row['best_val_macro_f1']:.4f} "
                    f"test {row['test_macro_f1']:.4f} {seconds:6.1f} s "
                    f"({result.global_step} steps)",
                    flush=True,
                )
    summary = {}
    for name, rows in runs.items():
        summary[name] = {
            key: statistics.mean(r[key] for r in rows)
            for key in ("best_val_macro_f1", "test_macro_f1", "seconds")
        }
        print(
            f"{name:24s} mean val {summary[name]['best_val_macro_f1']:.4f} "
            f"test {summary[name]['test_macro_f1']:.4f} {summary[name]['seconds']:.1f} s"
        )
    one, two = runs.values()
    differences = [b["test_macro_f1"] - a["test_macro_f1"] for a, b in zip(one, two, strict=True)]
    spread = statistics.pstdev(r["test_macro_f1"] for r in one)
    print(
        f"test macro-F1, 2 processes minus 1, per seed: {[round(d, 4) for d in differences]}; "
        f"1 process's spread over seeds (std): {spread:.4f}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "settings": {**base.as_dict(), "epochs": args.epochs, "seeds": args.seeds},
                "runs": runs,
                "summary": summary,
                "test_difference_per_seed": differences,
                "test_spread_over_seeds": spread,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

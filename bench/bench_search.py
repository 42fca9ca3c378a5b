"""Bayesian search against the learning-rate grid on the demo data: best validation macro-F1
after each trial, for both, trained on the same snapshot with the same settings.

The demo feed's nights run through the pipeline into a private data root; the grid trains one
trial per learning-rate factor around the contract's rate (the contract's epochs and batch
size); the Bayesian search asks the study for each trial as a mapped task would (a study loaded
afresh per trial, its sampler seeded per trial), prunes with the contract's pruner and tells the
result. Each study is repeated with several seeds; a curve is the best so far after each trial.

    python bench/bench_search.py --trials 7 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import tempfile
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from governance.contract_finetune import GRID_LEARNING_RATE_FACTORS
from governance.contracts import contracts_dir, load_contract
from governance.demo.feed import generate_feed
from governance.finetune import FinetuneRequest, search
from governance.finetune.training import VAL_METRIC, TrialConfig, train_trial
from governance.pipeline import DayRun, run_day
from governance.snapshot import build_snapshot

RESULTS = Path(__file__).parent / "results" / "search.json"
DATASET = "demo_reviews"
START = dt.date(2026, 11, 1)  # the demo contract's start_date


def demo_snapshot(root: Path, days: int, items_per_day: int) -> Path:
    """The demo feed's nights published into ``root``; the snapshot of the last version."""
    contract = load_contract(contracts_dir() / f"{DATASET}.yaml")
    truths = generate_feed(root / "landing", root / "truth", START, days, items_per_day)
    for truth in truths:
        run_day(DayRun(contract, truth.day, root=root, run_id=f"bench_{truth.day}"))
    return build_snapshot(root, DATASET, None)


def train(snapshot: Path, config: dict[str, Any], folder: Path, callbacks=()) -> float:
    result = train_trial(snapshot, TrialConfig(**config), folder, callbacks=list(callbacks))
    return result.best_val_macro_f1


def grid_curve(snapshot: Path, request: FinetuneRequest, trials: int, work: Path) -> dict:
    base = asdict(replace(request.trial, accelerator="cpu"))
    values, epochs = [], 0
    for index, factor in enumerate(GRID_LEARNING_RATE_FACTORS[:trials]):
        config = {**base, "learning_rate": base["learning_rate"] * factor}
        values.append(train(snapshot, config, work / f"grid_{index}"))
        epochs += config["epochs"]
    return {"values": values, "best_so_far": search.best_so_far(values), "epochs": epochs}


def bayesian_curve(
    snapshot: Path, request: FinetuneRequest, trials: int, seed: int, work: Path
) -> dict:
    settings = search.SearchSettings(
        study=f"bench/{seed}",
        storage=f"sqlite:///{work / 'studies.db'}",
        space=request.search_space.model_dump(),
        pruner=request.pruner,
        startup_trials=request.startup_trials,
        seed=seed,
    )
    search.create_study(settings, {})
    base = asdict(replace(request.trial, accelerator="cpu", seed=seed))
    values: list[float | None] = []
    states, epochs = [], 0
    for index in range(trials):
        study = search.load_study(settings, index)
        proposal = search.propose(study, index, settings.search_space())
        pruning = search.OptunaPruning(proposal.trial, VAL_METRIC)
        config = proposal.configure(base)
        value = train(snapshot, config, work / f"bayes_{seed}_{index}", [pruning])
        states.append(search.tell(study, proposal, value, pruning.pruned))
        # a pruned trial is not a candidate: it does not count toward the best
        values.append(value if states[-1] == search.COMPLETE else None)
        frozen = study.get_trials(deepcopy=False)[proposal.number]
        epochs += len(frozen.intermediate_values)
    return {
        "values": values,
        "states": states,
        "best_so_far": search.best_so_far(values),
        "epochs": epochs,
    }


def trials_to_reach(curve: list[float | None], target: float) -> int | None:
    """The number of trials after which the best so far reaches ``target``."""
    for count, best in enumerate(curve, start=1):
        if best is not None and best >= target - 1e-12:
            return count
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=len(GRID_LEARNING_RATE_FACTORS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--items-per-day", type=int, default=400)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    contract = load_contract(contracts_dir() / f"{DATASET}.yaml")
    request = FinetuneRequest.from_contract(contract, search="bayesian", trials=args.trials)
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        work = Path(tmp)
        print(f"publishing {args.days} demo nights of {args.items_per_day} items ...", flush=True)
        snapshot = demo_snapshot(work / "data", args.days, args.items_per_day)
        started = time.perf_counter()
        grid = grid_curve(snapshot, request, args.trials, work)
        grid_seconds = time.perf_counter() - started
        target = max(grid["values"])
        print(f"grid   ({grid_seconds:.0f} s, {grid['epochs']} epochs): best so far", _row(grid))
        studies = {}
        for seed in args.seeds:
            started = time.perf_counter()
            curve = bayesian_curve(snapshot, request, args.trials, seed, work)
            curve["seconds"] = time.perf_counter() - started
            curve["trials_to_grid_best"] = trials_to_reach(curve["best_so_far"], target)
            studies[seed] = curve
            reached = curve["trials_to_grid_best"]
            print(
                f"bayes seed {seed} ({curve['seconds']:.0f} s, {curve['epochs']} epochs, "
                f"{curve['states'].count(search.PRUNED)} pruned): best so far {_row(curve)}; "
                f"grid's best {target:.4f} "
                + (f"reached after {reached} trials" if reached else "not reached"),
                flush=True,
            )
            write_results(args.trials, grid, studies, target, request)
    reached = [c["trials_to_grid_best"] for c in studies.values()]
    print(
        f"grid's best after {trials_to_reach(grid['best_so_far'], target)} of {args.trials} "
        f"trials; Bayesian reached it in {sum(r is not None for r in reached)} of "
        f"{len(reached)} seeds, after {reached} trials"
    )


def write_results(
    trials: int, grid: dict, studies: dict, target: float, request: FinetuneRequest
) -> None:
    """Written after every study, so a long run cut short keeps what it measured."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.platform(),
        "trials": trials,
        "grid": grid,
        "bayesian": studies,
        "grid_best": target,
        "settings": {
            "space": request.search_space.model_dump(),
            "startup_trials": request.startup_trials,
            "pruner": request.pruner,
            "grid_epochs": request.trial.epochs,
            "train_rows": request.trial.max_train_rows,
        },
    }
    RESULTS.write_text(json.dumps(payload, indent=2))


def _row(curve: dict) -> str:
    return " ".join("-" if v is None else f"{v:.3f}" for v in curve["best_so_far"])


if __name__ == "__main__":
    main()

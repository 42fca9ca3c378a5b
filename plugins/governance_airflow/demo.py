"""`make run`: generate the demo feed, run the governance DAG for each day through Airflow,
report what each stage caught against the defects the generator injected, then fine-tune on the
newest version through the fine-tune DAG and show the MLflow run, model version and alias.

    python -m governance_airflow.demo --start 2026-11-01 --days 4 --items-per-day 400
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from governance.contracts import contracts_dir, data_root, load_contract

DEMO_DATASET = "demo_reviews"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=None,
        help="first day of the feed (default: the contract's start_date)",
    )
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--items-per-day", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-finetune", action="store_true", help="governance only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from governance.demo_feed import generate_feed
    from governance.evaluation import evaluate_version, format_scores
    from governance.publish import read_manifest
    from governance.summary import format_day_summary
    from governance_airflow.factory import build_governance_dag, without_deadlines

    root = data_root()
    contract = load_contract(contracts_dir() / f"{DEMO_DATASET}.yaml")
    # Days settle in order from the dataset's start: the generated feed is where it starts.
    start = args.start or dt.date.fromisoformat(contract.start_date)
    contract = contract.model_copy(update={"start_date": start.isoformat()})
    truths = generate_feed(
        root / "landing",
        root / "truth",
        start,
        args.days,
        items_per_day=args.items_per_day,
        seed=args.seed,
        dataset=DEMO_DATASET,
    )
    print(f"Generated {args.days} days of '{DEMO_DATASET}' under {root / 'landing'}")
    dag = without_deadlines(build_governance_dag(contract))

    reports = []
    for truth in truths:
        day = dt.date.fromisoformat(truth.day)
        started = time.perf_counter()
        dag_run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        elapsed = time.perf_counter() - started
        state = str(getattr(dag_run, "state", "unknown"))
        if "success" not in state:
            print(f"{dag.dag_id} {truth.day}: DAG run ended {state}", file=sys.stderr)
            return 1
        version_dir = root / "curated" / DEMO_DATASET / truth.day
        manifest = read_manifest(version_dir)
        scores = evaluate_version(truth, version_dir)
        reports.append(
            f"{format_day_summary(manifest, version_dir)}\n"
            f"  airflow run    {dag_run.run_id} ({elapsed:.1f} s)\n"
            f"  detection against the injected defects:\n{format_scores(scores)}"
        )

    print("\n" + "=" * 78)
    print("\n\n".join(reports))
    print("=" * 78)
    if args.skip_finetune:
        return 0
    return finetune(contract, truths[-1].day)


def finetune(contract, version: str) -> int:
    """Run finetune_<dataset> on ``version`` (sized by the contract's fine-tune section)."""
    from governance_airflow.factory import without_deadlines
    from governance_airflow.finetune_factory import build_finetune_dag

    dag = without_deadlines(build_finetune_dag(contract))
    started = time.perf_counter()
    dag_run = dag.test(run_conf={"version": version})
    elapsed = time.perf_counter() - started
    if "success" not in str(dag_run.state):
        print(f"{dag.dag_id}: DAG run ended {dag_run.state}", file=sys.stderr)
        return 1
    print(format_finetune(dag_run.get_task_instance("register").xcom_pull(), elapsed))
    return 0


def format_finetune(outcome: dict, elapsed: float) -> str:
    from governance import tracking

    metrics = outcome["metrics"]
    name = outcome["model_name"]
    return "\n".join(
        [
            f"{DEMO_DATASET} fine-tune on version {outcome['version']} ({elapsed:.0f} s)",
            f"  MLflow store   {tracking.tracking_uri()}",
            f"  MLflow run     {outcome['run_id']}",
            f"  test           macro-F1 {metrics['test_macro_f1']:.3f}, accuracy "
            f"{metrics['test_accuracy']:.3f}, ECE {metrics['test_expected_calibration_error']:.3f}",
            f"  model          {name} version {outcome['registered']}",
            f"  promotion      {'promoted' if outcome['promoted'] else 'not promoted'}: "
            f"{outcome['reason']}",
            f"  alias          champion -> version {outcome['champion']}",
            f"  lineage        make lineage MODEL={name}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

"""Keep a dataset's history consistent: check it, recompute stale days in order, skip a day.

    python -m governance.reconcile verify demo_reviews      # exit 1 when anything is off
    python -m governance.reconcile reconcile demo_reviews   # recompute stale days, in order
    python -m governance.reconcile skip demo_reviews 2026-11-03 --reason "feed outage"

``reconcile`` here runs the stages in this process (``run_day``); the Airflow deployment does the
same through the ``reconcile_<dataset>`` DAG, which triggers a governance run per stale day (the
ordering check in the data layer makes those runs settle in order, whatever runs them).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from governance.contracts import Contract, contracts_dir, data_root, load_contract
from governance.history import Finding, Ledger, history_digest, verify


def ledger_for(contract: Contract, root: Path | None = None) -> Ledger:
    return Ledger(root or data_root(), contract.name, contract.start_date)


def stale_days(ledger: Ledger) -> list[str]:
    """Days to recompute, oldest first: every day whose recorded history is no longer current."""
    return [day for day, (stale, _) in ledger.expected_staleness().items() if stale]


def rerun_id(ledger: Ledger, day: str) -> str:
    """A run id that names the day and the history it will be computed against, so that asking
    twice for the same recomputation gives the same id (and a second trigger is skipped)."""
    record = ledger.get(day)
    current = history_digest(ledger.history(day))
    key = f"{record.history_digest if record else ''}|{current}"
    return f"reconcile__{day}__{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def reconcile(
    contract: Contract,
    root: Path | None = None,
    run: Callable[[Contract, str, Path, str], Any] | None = None,
    progress: Callable[[str], None] = print,
) -> list[str]:
    """Recompute the stale days in order, in this process; returns the days recomputed.

    Each recomputation may make the days after it current again (same data, same history) or
    leave them stale (other data): the list is read again after every day.
    """
    root = root or data_root()
    ledger = ledger_for(contract, root)
    run = run or _run_day
    done: list[str] = []
    while days := [d for d in stale_days(ledger) if d not in done]:
        day = days[0]
        progress(f"{contract.name} {day}: recomputing ({len(days)} stale)")
        run(contract, day, root, rerun_id(ledger, day))
        done.append(day)
    progress(f"{contract.name}: {len(done)} day(s) recomputed, none stale")
    return done


def _run_day(contract: Contract, day: str, root: Path, run_id: str) -> Any:
    from governance.errors import GateFailedError
    from governance.pipeline import DayRun, run_day

    try:
        return run_day(DayRun(contract=contract, day=day, root=root, run_id=run_id))
    except GateFailedError as exc:  # the day settled as refused: that is a result too
        return str(exc)


def format_findings(dataset: str, findings: list[Finding]) -> str:
    if not findings:
        return f"{dataset}: history consistent"
    lines = [f"{dataset}: {len(findings)} problem(s)"]
    lines.extend(f"  {finding}" for finding in findings)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("verify", "reconcile", "skip"):
        command = sub.add_parser(name)
        command.add_argument("dataset")
        if name == "skip":
            command.add_argument("day")
            command.add_argument("--reason", required=True)
        if name == "verify":
            command.add_argument("--shallow", action="store_true", help="skip file hashes")
    args = parser.parse_args(argv)
    contract = load_contract(contracts_dir() / f"{args.dataset}.yaml")
    ledger = ledger_for(contract)
    if args.command == "verify":
        findings = verify(ledger, deep=not args.shallow)
        print(format_findings(contract.name, findings))
        return 1 if findings else 0
    if args.command == "skip":
        stale = ledger.skip(args.day, args.reason)
        print(f"{contract.name} {args.day}: skipped ({args.reason})")
        if stale:
            print(f"  now stale: {', '.join(stale)}; run reconcile")
        return 0
    reconcile(contract)
    return 0


if __name__ == "__main__":
    sys.exit(main())

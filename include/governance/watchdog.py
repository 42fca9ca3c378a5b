"""What the hourly watchdog checks: fresh data, a consistent history, a recent champion, no task
failed for good.

Each check returns whether all is well and, when not, one sentence naming the dataset or task
and by how much it is late, so the alert says what to look at.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from governance.contracts import Contract
from governance.layout import DatasetLayout, task_failures
from governance.pipeline import published_versions


@dataclass(frozen=True)
class WatchResult:
    ok: bool
    message: str


def expected_day(contract: Contract, now: dt.datetime) -> dt.date:
    """The newest day whose version should exist by ``now``: yesterday's, once the landing
    wait of the nightly run (plus an hour to process) has passed; the day before until then."""
    grace = dt.timedelta(hours=contract.landing.timeout_hours + 1)
    return (now - grace).date() - dt.timedelta(days=1)


def freshness(root: Path, contract: Contract, now: dt.datetime) -> WatchResult:
    """Whether the expected day is published; a day settled as skipped is not late, and says
    why; a missing one says how late, and why when its run failed for good."""
    from governance.history import Ledger, Settlement

    day = expected_day(contract, now)
    days = published_versions(DatasetLayout(root, contract.name).curated)
    if day.isoformat() in days or (days and days[-1] > day.isoformat()):
        return WatchResult(True, f"{contract.name}: version {day} is published")
    record = Ledger(root, contract.name, contract.start_date).get(day.isoformat())
    if record is not None and record.status == Settlement.SKIPPED:
        return WatchResult(True, f"{contract.name}: {day} settled as skipped: {record.reason}")
    why = _failed_run(root, contract, day, now)
    if not days:
        return WatchResult(False, f"{contract.name}: no curated version for {day}; none yet{why}")
    late = (day - dt.date.fromisoformat(days[-1])).days
    return WatchResult(
        False,
        f"{contract.name}: no curated version for {day}; the newest is {days[-1]}, "
        f"{late} day{'s' if late != 1 else ''} late{why}",
    )


def _failed_run(root: Path, contract: Contract, day: dt.date, now: dt.datetime) -> str:
    """Why the day's governance run failed for good, from the failure log (or nothing)."""
    since = dt.datetime.combine(day, dt.time(), tzinfo=now.tzinfo)
    for failure in reversed(final_failures(root, since, now)):
        if failure["dag_id"] == contract.dag_id and failure.get("day") == day.isoformat():
            return f"; its run failed at {failure['task_id']}: {failure['error']}"
    return ""


def history_consistent(root: Path, contract: Contract) -> WatchResult:
    """Every settled day current and every published version matching its record (the file
    hashes are left to ``make verify``: reading every file hourly costs too much)."""
    from governance.history import Ledger, verify

    findings = verify(Ledger(root, contract.name, contract.start_date), deep=False)
    if not findings:
        return WatchResult(True, f"{contract.name}: history consistent")
    listed = "; ".join(str(f) for f in findings[:5])
    more = f" (and {len(findings) - 5} more)" if len(findings) > 5 else ""
    return WatchResult(
        False,
        f"{contract.name}: {len(findings)} history problem(s): {listed}{more}; "
        f"run the {contract.reconcile_dag_id} DAG or make reconcile DATASET={contract.name}",
    )


def champion_age(
    created: dt.datetime | None, model: str, max_age_days: float, now: dt.datetime
) -> WatchResult:
    """``created``: when the version holding the champion alias was registered (None: none)."""
    if created is None:
        return WatchResult(False, f"{model}: no champion registered")
    age = (now - created).total_seconds() / 86400
    if age <= max_age_days:
        return WatchResult(True, f"{model}: champion is {age:.1f} days old")
    return WatchResult(
        False,
        f"{model}: champion registered {created:%Y-%m-%d %H:%M} is {age:.1f} days old, "
        f"{age - max_age_days:.1f} days over the {max_age_days:g} allowed",
    )


@dataclass(frozen=True)
class FinalFailure:
    """A task that failed for good: out of retries, or failed by an error no retry can fix."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    max_tries: int
    failed_at: str
    error: str
    day: str | None = None  # the partition a governance run processed


def record_final_failure(root: Path, failure: FinalFailure) -> Path:
    """Append one line to the day's failure log (small appends are atomic with O_APPEND)."""
    folder = task_failures(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{failure.failed_at[:10]}.jsonl"
    line = (json.dumps(asdict(failure), sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def final_failures(root: Path, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    folder = task_failures(root)
    found = []
    day = since.date()
    while day <= until.date():
        path = folder / f"{day.isoformat()}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if since <= dt.datetime.fromisoformat(record["failed_at"]) <= until:
                    found.append(record)
        day += dt.timedelta(days=1)
    return found


def no_final_failures(root: Path, now: dt.datetime, hours: float = 24) -> WatchResult:
    failures = final_failures(root, now - dt.timedelta(hours=hours), now)
    if not failures:
        return WatchResult(True, f"no task failed for good in the last {hours:g} h")
    listed = "; ".join(
        f"{f['dag_id']}.{f['task_id']} ({f['run_id']}) failed at {f['failed_at']} "
        f"after try {f['try_number']} of {f['max_tries']}: {f['error']}"
        for f in failures
    )
    return WatchResult(
        False, f"{len(failures)} task(s) failed for good in the last {hours:g} h: {listed}"
    )

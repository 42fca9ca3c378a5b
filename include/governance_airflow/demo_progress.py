"""What ``make run`` prints while it runs: each run as the metadata database has it at one poll,
and one line each time a run's description changes. Pure: no Airflow import."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Task states by what they say about a run, most telling first.
ACTIVITY = (
    ("running", "running"),
    ("up_for_retry", "retrying"),
    ("up_for_reschedule", "waiting"),
    ("deferred", "waiting"),
    ("queued", "queued"),
    ("scheduled", "queued"),
)


@dataclass(frozen=True)
class RunSnapshot:
    """One DAG run as the metadata database has it at one poll."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    day: str | None = None  # the logical date's day; an Asset-triggered run has none
    tasks: tuple[tuple[str, str], ...] = ()  # (task_id, state) per task instance
    seconds: float | None = None  # start to end, once it has ended

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.dag_id, self.day, self.run_type) if part)


def counted(names: Iterable[str]) -> str:
    """``train, train, register`` -> ``train x2, register`` (mapped tasks count once each)."""
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in Counter(names).items())


def activity(tasks: Sequence[tuple[str, str]]) -> str | None:
    """What a running run is doing: its running tasks, else what it waits or retries on; None
    between two tasks (the scheduler has not queued the next one yet)."""
    for state, word in ACTIVITY:
        names = [task for task, task_state in tasks if task_state == state]
        if names:
            return f"{word} {counted(names)}"
    return None


def describe(run: RunSnapshot) -> str | None:
    if run.state == "success":
        return "success" if run.seconds is None else f"success in {run.seconds:.0f} s"
    if run.state == "failed":
        for state in ("failed", "upstream_failed"):
            failed = [task for task, task_state in run.tasks if task_state == state]
            if failed:
                return f"FAILED at {counted(failed)}"
        return "FAILED"
    if run.state == "queued":
        return "queued"
    return activity(run.tasks)


@dataclass
class ProgressPrinter:
    """One line each time a run's description changes, stamped with seconds since the start."""

    started: float = field(default_factory=time.monotonic)
    seen: dict[str, str] = field(default_factory=dict)

    def lines(self, runs: Iterable[RunSnapshot], now: float | None = None) -> list[str]:
        elapsed = (time.monotonic() if now is None else now) - self.started
        found = []
        for run in runs:
            text = describe(run)
            key = f"{run.dag_id}/{run.run_id}"
            if text is not None and self.seen.get(key) != text:
                self.seen[key] = text
                found.append(f"[{elapsed:4.0f} s] {run.label}: {text}")
        return found


def nights_done(nights: Iterable[RunSnapshot]) -> set[str]:
    return {run.day for run in nights if run.state == "success" and run.day}


def finetune_may_start(days: Sequence[str], done: set[str]) -> bool:
    """Every night but the last has published: the next publication is the last night's, whose
    Asset event is the one that should start the fine-tune."""
    return all(day in done for day in days[:-1])


def run_seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()

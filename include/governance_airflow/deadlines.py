"""Deadline alerts: a run that has not finished in time is reported, whatever it waits on.

A DAG carries a ``DeadlineAlert`` (``DAG(deadline=deadline_for(contract, "governance"))``). When a
run is queued, Airflow stores its need-by time (queued at + the allowance); once it passes with the
run unfinished, the scheduler queues ``on_deadline_miss`` and the triggerer awaits it. The
callback is async because Airflow runs an ``AsyncCallback`` in the triggerer, whatever executor
runs the tasks (only some executors can run a ``SyncCallback``). It logs the miss, counts it in
statsd as ``<prefix>.<dataset>.deadline_miss`` (``governance.metrics``) and hands it to an
optional notifier.

The queue time is the reference, not the logical date: a nightly run's logical date is the start
of the day it processes (a day before it is queued), and an Asset-triggered fine-tune run has none.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance import metrics

if TYPE_CHECKING:
    # airflow/sdk/__init__.pyi leaves these out; at run time they come from the public module
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    from governance.contracts import Contract
else:
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

log = logging.getLogger(__name__)

# How long after it is queued a run may take; a contract field should replace these defaults.
ALLOWANCES = {
    "governance": dt.timedelta(hours=2),
    "finetune": dt.timedelta(hours=6),
}

NOTIFIER_ENV = "GOVERNANCE_DEADLINE_NOTIFIER"


@dataclass(frozen=True)
class DeadlineMiss:
    """What a notifier is told about one missed deadline."""

    dataset: str
    kind: str
    dag_id: str | None
    run_id: str | None
    deadline_time: str | None

    @classmethod
    def from_context(cls, dataset: str, kind: str, context: dict[str, Any] | None) -> DeadlineMiss:
        """Read the run and the need-by time from the context the scheduler attaches."""
        context = context or {}
        dag_run = context.get("dag_run") or {}
        deadline_time = (context.get("deadline") or {}).get("deadline_time")
        if isinstance(deadline_time, dt.datetime):
            deadline_time = deadline_time.isoformat()
        return cls(
            dataset=dataset,
            kind=kind,
            dag_id=dag_run.get("dag_id"),
            run_id=dag_run.get("dag_run_id"),
            deadline_time=None if deadline_time is None else str(deadline_time),
        )

    def describe(self) -> str:
        return (
            f"{self.kind} run {self.run_id} of {self.dag_id} ({self.dataset}) missed its "
            f"deadline {self.deadline_time}"
        )


def deadline_alert(dataset: str, kind: str, allowance: dt.timedelta) -> DeadlineAlert:
    """A run of a ``kind`` DAG of ``dataset`` must finish ``allowance`` after it was queued."""
    if allowance < dt.timedelta(0):
        raise ValueError(f"deadline allowance of {kind} {dataset!r} is negative: {allowance}")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=allowance,
        callback=AsyncCallback(on_deadline_miss, kwargs={"dataset": dataset, "kind": kind}),
        name=f"{kind}_{dataset}_deadline",
    )


def deadline_for(contract: Contract, kind: str) -> DeadlineAlert:
    """The deadline of the contract's governance or fine-tune DAG."""
    if kind not in ALLOWANCES:
        raise ValueError(
            f"unknown DAG kind {kind!r} for a deadline; expected one of {sorted(ALLOWANCES)}"
        )
    return deadline_alert(contract.name, kind, ALLOWANCES[kind])


def load_notifier() -> Callable[[DeadlineMiss], Any] | None:
    """The callable named by ``GOVERNANCE_DEADLINE_NOTIFIER`` (``package.module.function``)."""
    path = os.environ.get(NOTIFIER_ENV, "").strip()
    if not path:
        return None
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{NOTIFIER_ENV}={path!r} is not a dotted path to a callable")
    notifier = getattr(importlib.import_module(module_name), attribute)
    if not callable(notifier):
        raise ValueError(f"{NOTIFIER_ENV}={path!r} is not callable")
    return notifier


async def notify(miss: DeadlineMiss) -> None:
    """Hand the miss to the configured notifier; a failing notifier is logged, never raised.

    A plain function runs in a thread so that it cannot stall the triggerer's event loop.
    """
    try:
        notifier = load_notifier()
        if notifier is None:
            return
        if inspect.iscoroutinefunction(notifier):
            await notifier(miss)
        else:
            await asyncio.to_thread(notifier, miss)
    except Exception:
        log.exception("The deadline notifier %s failed on: %s", os.environ.get(NOTIFIER_ENV), miss)


async def on_deadline_miss(dataset: str, kind: str, context: dict[str, Any] | None = None) -> str:
    """Airflow's deadline callback: log, count and notify one missed deadline."""
    miss = DeadlineMiss.from_context(dataset, kind, context)
    log.warning("Deadline missed: %s", miss.describe())
    if not metrics.count(f"{metrics.slug(dataset)}.deadline_miss"):
        log.error("Could not count the missed deadline of %s in statsd", dataset)
    await notify(miss)
    return miss.describe()

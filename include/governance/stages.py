"""The nightly stages of a dataset, declared once.

``run_day``, the governance DAG's tasks, the conservation check (which quarantine tables exist)
and the DAG-integrity test all derive from ``STAGES``. Each stage reads what earlier stages left
in the run's work folder and writes its own tables there, so that an orchestrator can run them as
separate, individually retried tasks. Adding a stage is one entry here plus its function.

This module is imported when DAG files are parsed, so it stays light: a stage names its function
as ``module:attribute`` and imports it on first call (tests resolve every entry).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.pipeline import DayRun

StageFunction = Callable[["DayRun"], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One step of the nightly run and its contract with the steps around it."""

    name: str
    task_id: str  # the governance DAG's task
    function: str  # "module:attribute", called with the DayRun
    doc: str
    reads: tuple[str, ...] = ()  # work tables (or "landing", "published history")
    writes: tuple[str, ...] = ()
    # The work table of the rows this stage quarantines; conservation counts every one of them.
    quarantine: str | None = None
    # Its quarantine rows are whole items, which the stages after it no longer see (ingest's are
    # source records, which never became items).
    quarantines_items: bool = False
    # Runs only once every earlier day has settled (the DAG waits on the history sensor first).
    needs_settled_history: bool = False
    # Writes the version and emits the dataset's Asset event.
    publishes: bool = False
    # Earlier work tables this stage rewrites (same rows, values changed, as "<table>@<stage>"):
    # the stages after it read the revision, and a retry of this stage still reads the original.
    revises: tuple[str, ...] = ()

    def resolve(self) -> StageFunction:
        module, _, attribute = self.function.partition(":")
        found = getattr(importlib.import_module(module), attribute, None)
        if not callable(found):
            raise LookupError(f"stage {self.name!r}: {self.function} is not a function")
        return found

    def __call__(self, run: DayRun) -> dict[str, Any]:
        return self.resolve()(run)


STAGES: tuple[Stage, ...] = (
    Stage(
        name="ingest",
        task_id="ingest_validate",
        function="governance.pipeline:stage_ingest",
        doc="Read and validate the day's landing files; every rejected record is quarantined.",
        reads=("landing",),
        writes=("items", "annotations", "quarantine_ingest", "ingest"),
        quarantine="quarantine_ingest",
    ),
    Stage(
        name="privacy",
        task_id="scan_privacy",
        function="governance.pipeline:stage_privacy",
        doc="Personal data and secrets in the text: reported, masked or quarantined per entity.",
        reads=("items", "quarantine_ingest"),
        writes=("quarantine_privacy", "pii_findings", "privacy"),
        revises=("items", "quarantine_ingest"),
        quarantine="quarantine_privacy",
        quarantines_items=True,
    ),
    Stage(
        name="dedup",
        task_id="deduplicate",
        function="governance.pipeline:stage_dedup",
        doc="Exact and near duplicates within the day and against every settled earlier day.",
        reads=("items", "published history"),
        writes=(
            "assignments",
            "duplicates",
            "conflicts",
            "quarantine_dedup",
            "dedup_index",
            "registry",
            "dedup",
            "history",
        ),
        quarantine="quarantine_dedup",
        quarantines_items=True,
        needs_settled_history=True,
    ),
    Stage(
        name="split",
        task_id="split",
        function="governance.pipeline:stage_split",
        doc="Assign the kept items to train/val/test, whole duplicate clusters together.",
        reads=("items", "assignments", "quarantine_dedup", "registry"),
        writes=("splits", "split"),
    ),
    Stage(
        name="audit",
        task_id="audit",
        function="governance.pipeline:stage_audit",
        doc="Consensus, agreement, annotator quality, suspected label errors and drift.",
        reads=("splits", "annotations", "dedup"),
        writes=("audit_*", "audit"),
    ),
    Stage(
        name="gate",
        task_id="gate",
        function="governance.version:stage_gate",
        doc="A refused version fails here without retrying: the data must change, not the try.",
        reads=("*",),
    ),
    Stage(
        name="publish",
        task_id="publish",
        function="governance.version:stage_publish",
        doc="Check conservation and write the version atomically; the day settles.",
        reads=("*",),
        publishes=True,
    ),
)


def stage_named(name: str, stages: Iterable[Stage] = STAGES) -> Stage:
    for stage in stages:
        if stage.name == name:
            return stage
    raise LookupError(f"no stage named {name!r}")


def quarantine_tables(stages: Iterable[Stage] = STAGES) -> list[str]:
    """The work tables whose rows are quarantined, in stage order."""
    return [stage.quarantine for stage in stages if stage.quarantine]

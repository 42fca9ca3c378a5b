"""Where every file of a dataset lives under the data root; nothing else joins path segments.

    <root>/landing/<dataset>/<day>/             the day's partition, as the source drops it
    <root>/work/<dataset>/<day>/<run>/          the tables one run's stages hand to each other
    <root>/curated/<dataset>/<day>/             a published version
    <root>/unpublished/<dataset>/<day>/         a dry run, or a version the gate refused
    <root>/withdrawn/<dataset>/                 published versions a refused rerun took back
    <root>/state/<dataset>/days/                the ledger of settled days
    <root>/state/<dataset>/ledger.lock          held while a version is written
    <root>/state/task_failures/                 tasks that failed for good (the watchdog reads)
    <root>/snapshots/<dataset>/<version>/       what a fine-tune trains on
    <root>/checkpoints/<dataset>/<run>/trial-NN/  a trial's checkpoints, stable per (run, trial)

The root is a local folder today. Every path below it is made here, so that moving the data to
object storage (an fsspec URL or Airflow's ObjectStoragePath as the root) is a change of this
module, not of the stages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FAILURES = ("state", "task_failures")


def run_slug(run_id: str) -> str:
    """A run id as a folder name: Airflow's ids hold ``:`` and ``+``, which some stores refuse."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def landing_root(root: Path) -> Path:
    """Where every dataset's source drops its partitions (``<dataset>/<day>/`` below it)."""
    return Path(root) / "landing"


def task_failures(root: Path) -> Path:
    return Path(root).joinpath(*FAILURES)


@dataclass(frozen=True)
class DatasetLayout:
    """The folders of one dataset under ``root``."""

    root: Path
    dataset: str

    def landing(self, day: str) -> Path:
        return landing_root(self.root) / self.dataset / day

    def work(self, day: str, run_id: str) -> Path:
        return Path(self.root) / "work" / self.dataset / day / run_slug(run_id)

    @property
    def curated(self) -> Path:
        return Path(self.root) / "curated" / self.dataset

    def version(self, day: str) -> Path:
        return self.curated / day

    def unpublished(self, day: str) -> Path:
        return Path(self.root) / "unpublished" / self.dataset / day

    @property
    def withdrawn(self) -> Path:
        return Path(self.root) / "withdrawn" / self.dataset

    @property
    def ledger(self) -> Path:
        return Path(self.root) / "state" / self.dataset / "days"

    @property
    def ledger_lock(self) -> Path:
        return Path(self.root) / "state" / self.dataset / "ledger.lock"

    def snapshot(self, version: str) -> Path:
        return Path(self.root) / "snapshots" / self.dataset / version

    def checkpoints(self, run_id: str, trial: int) -> Path:
        return (
            Path(self.root) / "checkpoints" / self.dataset / run_slug(run_id) / f"trial-{trial:02d}"
        )

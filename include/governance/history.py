"""Days settle in order: the ledger of settled days, recorded histories, staleness, the checker.

A day's result is a function of its landing files and of the days settled before it, so nothing
may read the history before every earlier day (from the contract's ``start_date``) is settled:
published, refused by the gate, or skipped by an explicit decision. Each settled day is one small
JSON record under ``state/<dataset>/days/``, written under the dataset's lock together with the
version it describes; it keeps the digest of the history the day was computed from. A day is
stale when that digest differs from the history before it now, or when an earlier day is stale:
republishing a day with other data therefore marks every later day stale, and recomputing them in
order (``reconcile``) makes them current again. Staleness is always recomputable from the records,
so the flags written into records and manifests can be checked (``verify``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from governance.errors import NonRetryableError, RetryableError
from governance.hashing import sha256_file
from governance.layout import DatasetLayout
from governance.manifest import MANIFEST, ManifestError, read_version_manifest

# Files whose bytes name the run that wrote them; the data digest leaves them out, so a rerun that
# gives the same data gives the same digest.
RUN_SPECIFIC_OUTPUTS = frozenset({"report.html"})


class Settlement(StrEnum):
    PUBLISHED = "published"
    REFUSED = "refused"
    SKIPPED = "skipped"


class HistoryNotSettledError(RetryableError):
    """An earlier day is not settled yet; retrying later (once it is) succeeds."""


class SettlementError(NonRetryableError):
    """A settlement decision that contradicts the ledger (e.g. skipping a published day)."""


@dataclass(frozen=True)
class DayRecord:
    """How one day of one dataset was settled, and against which history."""

    day: str
    status: Settlement
    digest: str
    history_digest: str | None
    stale: bool = False
    manifest_sha256: str | None = None
    run_id: str = ""
    reason: str = ""
    settled_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def entry(self) -> dict[str, Any]:
        """What a later day records of this one in its history."""
        return {
            "version": self.day,
            "status": str(self.status),
            "digest": self.digest,
            "manifest_sha256": self.manifest_sha256,
        }


def data_digest(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """One hash of a version's data files (their sha256), the run-specific report left out."""
    kept = {
        name: meta["sha256"] for name, meta in outputs.items() if name not in RUN_SPECIFIC_OUTPUTS
    }
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def history_digest(entries: list[dict[str, Any]]) -> str:
    """The hash of a history: which days, how each was settled, and each one's data digest.

    Manifest hashes are recorded for lineage but left out, since a manifest is rewritten when its
    stale flag changes while its data stays the same.
    """
    key = [(e["version"], e["status"], e["digest"]) for e in entries]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def days_between(first: str, end: str) -> list[str]:
    """Every day from ``first`` up to, not including, ``end``."""
    start, stop = dt.date.fromisoformat(first), dt.date.fromisoformat(end)
    return [(start + dt.timedelta(days=k)).isoformat() for k in range((stop - start).days)]


class Ledger:
    """The settled days of one dataset under ``<root>/state/<dataset>/``."""

    def __init__(self, root: Path, dataset: str, origin: str | None = None) -> None:
        """``origin``: the dataset's first day (the contract's ``start_date``); readers that have
        no contract at hand may leave it out, and then the earliest settled day stands for it."""
        self.root = Path(root)
        self.dataset = dataset
        self.layout = DatasetLayout(self.root, dataset)
        self.folder = self.layout.ledger
        self._origin = origin

    @property
    def origin(self) -> str:
        if self._origin is not None:
            return self._origin
        days = sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []
        return days[0] if days else "0001-01-01"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes: every write of a version, record or flag happens inside."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.layout.ledger_lock.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _path(self, day: str) -> Path:
        return self.folder / f"{day}.json"

    def get(self, day: str) -> DayRecord | None:
        path = self._path(day)
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return DayRecord(**{**raw, "status": Settlement(raw["status"])})

    def records(self) -> dict[str, DayRecord]:
        """Every record, oldest day first."""
        if not self.folder.is_dir():
            return {}
        days = sorted(p.stem for p in self.folder.glob("*.json"))
        return {day: record for day in days if (record := self.get(day)) is not None}

    def write(self, record: DayRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(record.day)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = {**asdict(record), "status": str(record.status)}
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ reading the history

    def unsettled(self, day: str) -> list[str]:
        """Days before ``day`` (from the origin) that are not settled, or settled but stale."""
        records = self.records()
        return [d for d in days_between(self.origin, day) if d not in records or records[d].stale]

    def require_settled(self, day: str) -> list[dict[str, Any]]:
        """The history of ``day``, once every earlier day is settled and current; else a
        retryable error naming what it waits for."""
        if day < self.origin:
            raise SettlementError(
                f"{self.dataset} {day}: before the dataset's start {self.origin} (contract "
                "start_date)"
            )
        waiting = self.unsettled(day)
        if waiting:
            shown = ", ".join(waiting[:5]) + (
                f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
            )
            raise HistoryNotSettledError(
                f"{self.dataset} {day}: waiting for {shown} to settle (published, refused by the "
                "gate or skipped); days settle in order"
            )
        return self.history(day)

    def history(self, day: str) -> list[dict[str, Any]]:
        """What a day computed now would record: every settled day before it, oldest first."""
        records = self.records()
        return [records[d].entry() for d in days_between(self.origin, day) if d in records]

    def published_before(self, day: str) -> list[str]:
        return [e["version"] for e in self.history(day) if e["status"] == Settlement.PUBLISHED]

    # ------------------------------------------------------------------ staleness

    def expected_staleness(self) -> dict[str, tuple[bool, str]]:
        """For every record: whether it is stale now, and why, recomputed from the records."""
        records = self.records()
        result: dict[str, tuple[bool, str]] = {}
        earlier_stale: str | None = None
        for day in sorted(records):
            record = records[day]
            if day < self.origin:
                continue
            if record.history_digest is None:
                result[day] = (False, "")
            elif earlier_stale is not None:
                result[day] = (True, f"an earlier day ({earlier_stale}) is stale")
            elif record.history_digest != history_digest(self._entries_before(records, day)):
                result[day] = (True, self._why_changed(record, records))
            else:
                result[day] = (False, "")
            if result[day][0] and earlier_stale is None:
                earlier_stale = day
        return result

    def _entries_before(self, records: Mapping[str, DayRecord], day: str) -> list[dict[str, Any]]:
        return [records[d].entry() for d in days_between(self.origin, day) if d in records]

    def _why_changed(self, record: DayRecord, records: Mapping[str, DayRecord]) -> str:
        manifest = self.layout.version(record.day) / MANIFEST
        recorded: list[dict[str, Any]] = []
        if record.status == Settlement.PUBLISHED and manifest.exists():
            recorded = (
                json.loads(manifest.read_text(encoding="utf-8"))
                .get("history", {})
                .get("versions", [])
            )
        return describe_difference(recorded, self._entries_before(records, record.day))

    def refresh_staleness(self, after: str) -> list[str]:
        """Rewrite the stale flag (record and manifest) of every day after ``after`` whose flag
        the records no longer support; returns the days that became stale."""
        became_stale = []
        for day, (stale, why) in self.expected_staleness().items():
            record = self.get(day)
            if day <= after or record is None or record.stale == stale:
                continue
            self._set_stale(record, stale, why)
            if stale:
                became_stale.append(day)
        return became_stale

    def _set_stale(self, record: DayRecord, stale: bool, why: str) -> None:
        manifest_sha = record.manifest_sha256
        folder = self.layout.version(record.day)
        if record.status == Settlement.PUBLISHED and (folder / MANIFEST).exists():
            from governance.publish import write_json_atomic

            manifest = read_version_manifest(folder).model_copy(
                update={
                    "state": "stale" if stale else "current",
                    "stale_reason": why if stale else None,
                }
            )
            write_json_atomic(folder / MANIFEST, manifest.written())
            manifest_sha = sha256_file(folder / MANIFEST)
        self.write(replace(record, stale=stale, manifest_sha256=manifest_sha, reason=why or ""))

    # ------------------------------------------------------------------ settling

    def settle(self, record: DayRecord) -> list[str]:
        """Record how a day settled (call inside ``lock``); returns later days now stale."""
        self.write(record)
        return self.refresh_staleness(record.day)

    def skip(self, day: str, reason: str, run_id: str = "manual") -> list[str]:
        """Settle a day that has no data as skipped: an explicit, recorded decision."""
        if not reason.strip():
            raise SettlementError("a skip needs a reason a reviewer can read")
        with self.lock():
            current = self.get(day)
            if current is not None and current.status == Settlement.PUBLISHED:
                raise SettlementError(
                    f"{self.dataset} {day} is published; a published day is not skipped"
                )
            return self.settle(
                DayRecord(
                    day=day,
                    status=Settlement.SKIPPED,
                    digest=str(Settlement.SKIPPED),
                    history_digest=None,
                    run_id=run_id,
                    reason=reason.strip(),
                )
            )

    def current_versions(self) -> list[str]:
        """Published days that may be trained on: settled, current, with no unsettled or stale
        day before them."""
        records = self.records()
        found = []
        for day in days_between(self.origin, _day_after(max(records, default=self.origin))):
            record = records.get(day)
            if record is None or record.stale:
                break
            if record.status == Settlement.PUBLISHED:
                found.append(day)
        return found


def _day_after(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def describe_difference(recorded: list[dict[str, Any]], current: list[dict[str, Any]]) -> str:
    """One sentence on how a recorded history differs from the one before the day now."""
    old = {e["version"]: e for e in recorded}
    new = {e["version"]: e for e in current}
    changes = []
    for day in sorted(set(old) | set(new)):
        before, after = old.get(day), new.get(day)
        if before is None:
            changes.append(f"{day} settled since ({after['status']})")  # type: ignore[index]
        elif after is None:
            changes.append(f"{day} is no longer settled")
        elif before["status"] != after["status"]:
            changes.append(f"{day} was {before['status']}, now {after['status']}")
        elif before["digest"] != after["digest"]:
            changes.append(f"{day} was republished with other data")
    return "; ".join(changes) or "the history it was computed from changed"


@dataclass(frozen=True)
class Finding:
    day: str
    problem: str

    def __str__(self) -> str:
        return f"{self.day}: {self.problem}"


def verify(ledger: Ledger, deep: bool = True) -> list[Finding]:
    """Walk the settled days and the published versions; every disagreement is a finding.

    Stale days (their recorded history is not what is settled before them now), flags that do not
    match that, records and versions that disagree, and (``deep``) output files whose bytes no
    longer match their manifest.
    """
    findings: list[Finding] = []
    records = ledger.records()
    curated = ledger.layout.curated
    for day, (stale, why) in ledger.expected_staleness().items():
        record = records[day]
        if stale:
            findings.append(Finding(day, f"stale: {why}"))
        if stale != record.stale:
            flag = "stale" if record.stale else "current"
            findings.append(Finding(day, f"marked {flag}, but the history says otherwise"))
        folder = curated / day
        if record.status == Settlement.PUBLISHED:
            findings.extend(_check_version(record, folder, deep))
        elif (folder / MANIFEST).exists():
            findings.append(Finding(day, f"{record.status}, yet a version is in {folder}"))
    if curated.is_dir():
        for folder in sorted(curated.iterdir()):
            if (folder / MANIFEST).exists() and folder.name not in records:
                findings.append(Finding(folder.name, "published version with no settled record"))
    return findings


def _check_version(record: DayRecord, folder: Path, deep: bool) -> list[Finding]:
    if not (folder / MANIFEST).exists():
        return [Finding(record.day, f"settled as published, but {folder} has no manifest")]
    try:
        manifest = read_version_manifest(folder)
    except ManifestError as exc:
        return [Finding(record.day, str(exc))]
    outputs = manifest.outputs or {}
    found = []
    if data_digest(manifest.written().get("outputs", {})) != record.digest:
        found.append(Finding(record.day, "the manifest's outputs differ from the settled record"))
    if manifest.history.digest != record.history_digest:
        found.append(Finding(record.day, "the manifest's history differs from the settled record"))
    if deep:
        for name, meta in sorted(outputs.items()):
            path = folder / name
            if not path.exists():
                found.append(Finding(record.day, f"{name} is missing"))
            elif sha256_file(path) != meta.sha256:
                found.append(Finding(record.day, f"{name} does not match its sha256"))
    return found

"""What the demo feed injects (the rate of each defect) and the truth it records about every
injected defect, one JSON file per day outside the landing area."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DefectRates:
    """How often each defect is injected, per item (per vote for votes, per line for lines)."""

    unparseable: float = 0.01
    bad_text: float = 0.01
    bad_vote: float = 0.01
    dirty_label: float = 0.05
    exact_duplicate: float = 0.04
    near_duplicate: float = 0.04
    hard_negative: float = 0.02
    conflict: float = 0.01
    flipped: float = 0.03


@dataclass
class DayTruth:
    """What was injected into one day's landing files; (file, line) pairs are 1-based lines."""

    dataset: str
    day: str
    unparseable: list[tuple[str, int]] = field(default_factory=list)
    schema_violations: list[tuple[str, int]] = field(default_factory=list)
    dirty_labels: list[tuple[str, int, str]] = field(default_factory=list)
    exact_duplicates: list[str] = field(default_factory=list)
    near_duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    flipped_items: list[str] = field(default_factory=list)
    unreliable_annotators: list[str] = field(default_factory=list)
    true_labels: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    # The same dirty votes keyed as the annotations table keys them: (item_id, annotator, label).
    dirty_votes: list[tuple[str, str, str]] = field(default_factory=list)
    # Every exact, near or conflicting duplicate -> the item it copies.
    duplicate_of: dict[str, str] = field(default_factory=dict)
    # (item_id, look-alike item_id): same templates, below the near-duplicate threshold.
    hard_negatives: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DayTruth:
        raw = json.loads(text)
        tuple_fields = {
            "unparseable",
            "schema_violations",
            "dirty_labels",
            "dirty_votes",
            "hard_negatives",
        }
        values: dict[str, Any] = {
            f.name: [tuple(v) for v in raw[f.name]] if f.name in tuple_fields else raw[f.name]
            for f in fields(cls)
            if f.name in raw
        }
        return cls(**values)


def atomic_write(path: Path, data: bytes) -> None:
    """Readers (the landing sensor, ingestion) never see a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def truth_path(truth_root: Path, dataset: str, day: date | str) -> Path:
    return Path(truth_root) / dataset / f"{day}.json"


def load_truth(truth_root: Path, dataset: str, day: date | str) -> DayTruth:
    return DayTruth.from_json(truth_path(truth_root, dataset, day).read_text(encoding="utf-8"))

"""What the governance report's sections read: the manifest, the version's tables and how many
examples to show, with the lookups every section shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from governance.frames import SPLITS
from governance.report.html import Html, lookup, para

REASON_BARS = 15
BUCKETS = ("quarantined", "duplicates", *SPLITS)
# Which audit.skipped sentences explain a missing block: a sentence starts with its topic.
SKIP_TOPICS = {
    "agreement": ("agreement", "consensus"),
    "annotators": ("annotator",),
    "label_errors": ("suspected label error", "label error", "label_errors"),
    "drift": ("drift",),
}


@dataclass(frozen=True)
class ReportInput:
    """What every section reads: the manifest, the tables and how many examples to show."""

    manifest: Mapping[str, Any]
    tables: Mapping[str, pd.DataFrame]
    examples: int
    queue_rows: int

    def table(self, name: str) -> pd.DataFrame:
        frame = self.tables.get(name)
        return frame if frame is not None else pd.DataFrame()

    def audit(self, *keys: str) -> Any:
        return lookup(self.manifest, "audit", *keys)

    def classes(self, *extra: Iterable[Any]) -> list[str]:
        """The audit's class order first, then any other class seen, sorted."""
        known = [str(c) for c in self.audit("classes") or []]
        seen = sorted({str(c) for group in extra for c in group} - set(known))
        return known + seen

    def skipped(self, topic: str) -> Html:
        sentences = [
            str(s)
            for s in self.audit("skipped") or []
            if str(s).lower().startswith(SKIP_TOPICS[topic])
        ]
        if not sentences:
            return para("Not computed for this version.", "note")
        return Html("".join(para(s, "note") for s in sentences))

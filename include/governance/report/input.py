"""What the governance report's sections read: the typed manifest, the version's tables and how
many examples to show, with the helpers every section shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from governance.frames import SPLITS
from governance.manifest import VersionManifest
from governance.report.html import Html, para

REASON_BARS = 15
# Which audit.skipped sentences explain a missing block: a sentence starts with its topic.
SKIP_TOPICS = {
    "agreement": ("agreement", "consensus"),
    "annotators": ("annotator",),
    "label_errors": ("suspected label error", "label error", "label_errors"),
}


@dataclass(frozen=True)
class ReportInput:
    """What every section reads: the manifest, the tables and how many examples to show."""

    manifest: VersionManifest
    tables: Mapping[str, pd.DataFrame]
    examples: int
    queue_rows: int
    detail_annotators: int = 12  # annotators drawn one by one: the flagged, then the least accurate

    def table(self, name: str) -> pd.DataFrame:
        frame = self.tables.get(name)
        return frame if frame is not None else pd.DataFrame()

    def item_texts(self, item_ids: Iterable[Any]) -> dict[Any, Any]:
        """Texts of the given items, wherever a table holds them (duplicates, published
        splits)."""
        wanted = list(item_ids)
        texts: dict[Any, Any] = {}
        for name in ("duplicates", *SPLITS):
            frame = self.table(name)
            if {"item_id", "text"} <= set(frame.columns):
                hit = frame[frame["item_id"].isin(wanted)]
                for item, item_text in zip(hit["item_id"], hit["text"], strict=True):
                    texts.setdefault(item, item_text)
        return texts

    def classes(self, *extra: Iterable[Any]) -> list[str]:
        """The audit's class order first, then any other class seen, sorted."""
        known = list(self.manifest.audit.classes)
        seen = sorted({str(c) for group in extra for c in group} - set(known))
        return known + seen

    def skipped(self, topic: str) -> Html:
        """The audit's own reason for a block it did not compute, so the reader learns why."""
        sentences = [
            s for s in self.manifest.audit.skipped if s.lower().startswith(SKIP_TOPICS[topic])
        ]
        if not sentences:
            return para("Not computed for this version.", "note")
        return Html("".join(para(s, "note") for s in sentences))

"""The demo feed as tests lay it out: landing partitions and truth files under one root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from governance.demo.feed import DayTruth, generate_feed


def demo_feed(
    root: Path, first_day: str, days: int, items_per_day: int, seed: int
) -> list[DayTruth]:
    """``days`` days of the demo feed from ``first_day``: ``root/landing`` and ``root/truth``."""
    return generate_feed(
        root / "landing",
        root / "truth",
        dt.date.fromisoformat(first_day),
        days,
        items_per_day=items_per_day,
        seed=seed,
    )

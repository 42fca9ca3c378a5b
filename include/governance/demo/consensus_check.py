"""The consensus of published demo versions against the demo feed's true labels: accuracy beside
plurality's, what the aggregator changed and whether it was right, and whether the confidence is
a probability (a reliability diagram and its expected calibration error).

The page it writes sits beside the truth files, outside the versions: a version holds only what
a night measured, and real feeds have no truth to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from governance import frames as F
from governance.demo.truth import DayTruth
from governance.report import plots
from governance.report.html import figures_table, image, page, para, pct, table

BINS = 10
PAGE = "consensus_check.html"


@dataclass(frozen=True)
class ConsensusCheck:
    """One or more versions' consensus against the truth."""

    days: list[str]
    items: int
    accuracy: float
    plurality_accuracy: float
    changed: int
    changed_right: int
    aggregators: list[str]
    reliability: pd.DataFrame

    @property
    def calibration_error(self) -> float:
        return calibration_error(self.reliability)


def calibration_error(bins: pd.DataFrame) -> float:
    """Expected calibration error: the bins' |accuracy - confidence| weighted by their items."""
    gaps = (bins["accuracy"] - bins["mean_confidence"]).abs()
    return float((gaps * bins["items"]).sum() / max(int(bins["items"].sum()), 1))


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS):
    """Items, mean confidence and accuracy per equal-width confidence bin (empty bins left out;
    a confidence of exactly 1 falls in the last bin)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": confidence, "correct": correct})
    grouped = frame.groupby("bin").agg(
        items=("correct", "size"),
        mean_confidence=("confidence", "mean"),
        accuracy=("correct", "mean"),
    )
    grouped.insert(0, "low", edges[grouped.index])
    grouped.insert(1, "high", edges[grouped.index + 1])
    return grouped.reset_index(drop=True)


def scored_items(truth: DayTruth, version_dir: Path) -> pd.DataFrame:
    """Published items decided by votes, with their true label."""
    consensus = pd.read_parquet(Path(version_dir) / "consensus.parquet")
    consensus = consensus[consensus["method"] != "given"].copy()
    consensus["truth"] = consensus[F.ITEM_ID].astype(str).map(truth.true_labels)
    return consensus[consensus["truth"].notna()].assign(day=truth.day)


def check_consensus(truths: list[DayTruth], curated: Path) -> ConsensusCheck:
    """The consensus of every day's version (``curated/<day>``) against that day's truth."""
    items = pd.concat(
        [scored_items(truth, Path(curated) / truth.day) for truth in truths], ignore_index=True
    )
    right = (items["consensus_label"] == items["truth"]).to_numpy()
    changed = (items["consensus_label"] != items["plurality_label"]).to_numpy()
    return ConsensusCheck(
        days=[truth.day for truth in truths],
        items=len(items),
        accuracy=float(right.mean()) if len(items) else float("nan"),
        plurality_accuracy=float((items["plurality_label"] == items["truth"]).mean()),
        changed=int(changed.sum()),
        changed_right=int((changed & right).sum()),
        aggregators=[str(m) for m in items.groupby("day")["method"].first()],
        reliability=reliability_table(items["confidence"].to_numpy(dtype=float), right),
    )


def check_page(check: ConsensusCheck, title: str) -> str:
    """A self-contained HTML page: the figures, the reliability diagram and its table."""
    bins = check.reliability
    png = plots.reliability_diagram(
        bins["mean_confidence"].tolist(),
        bins["accuracy"].tolist(),
        bins["items"].astype(int).tolist(),
        title="Consensus confidence against the truth",
    )
    rows = [
        (f"{low:.1f}-{high:.1f}", int(items), pct(confidence), pct(accuracy))
        for low, high, items, confidence, accuracy in bins.itertuples(index=False)
    ]
    body = [
        figures_table(
            [
                ("days", ", ".join(check.days)),
                ("aggregator per day", ", ".join(check.aggregators)),
                ("items with a true label", check.items),
                ("consensus accuracy", pct(check.accuracy)),
                ("plurality accuracy", pct(check.plurality_accuracy)),
                ("items the consensus changed from plurality", check.changed),
                ("of them changed to the true label", check.changed_right),
                ("expected calibration error", f"{check.calibration_error:.4f}"),
            ]
        ),
        para(
            "Confidence is the one-coin Dawid-Skene posterior of the consensus label. Items whose "
            "votes were all flipped to one wrong class (an injected defect) are wrong with "
            "unanimous votes: no vote-based confidence can see them, the review queue can.",
            "note",
        ),
        image(png, "reliability diagram"),
        table(("confidence", "items", "mean confidence", "accuracy"), rows, table_id="reliability"),
    ]
    return page(escape(title), "".join(body))

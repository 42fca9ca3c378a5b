"""Small matplotlib figures for the governance report, returned as PNG bytes.

Figures are built on ``matplotlib.figure.Figure`` directly, so no pyplot state or GUI backend is
involved and nothing leaks between calls. PNGs carry no software tag, so the same input gives the
same bytes and a rerun of the report is byte-identical.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

DPI = 80
WIDTH = 6.0
LABEL_CHARS = 40  # longer axis labels are cut so the bars keep their room
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def bar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str = ""
) -> bytes:
    """Horizontal bars, first label on top: reads well with long category names."""
    height = 1.0 + 0.3 * max(len(labels), 1)
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    ax.barh(positions, values, color=PALETTE[0])
    ax.set_yticks(positions, [_short(str(label)) for label in labels])
    ax.invert_yaxis()
    for position, value in zip(positions, values, strict=True):
        ax.annotate(
            f"{value:,.0f}" if float(value).is_integer() else f"{value:.3f}",
            (value, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.margins(x=0.15)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    return _png(fig)


def grouped_bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str = "",
) -> bytes:
    """One group of bars per category, one bar per series (e.g. train/val/test or now/before)."""
    fig = Figure(figsize=(WIDTH, 3.0), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(positions + offset, values, width, label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(positions, [_short(str(c)) for c in categories])
    if len(categories) > 6:
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)


def heatmap(
    matrix: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    *,
    title: str,
    vmin: float,
    vmax: float,
    xlabel: str = "",
    ylabel: str = "",
    size: float = 3.2,
) -> bytes:
    """Annotated matrix; missing cells (NaN) stay blank and read 'n/a'."""
    values = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(size + 0.8, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(np.arange(len(columns)), [_short(str(c)) for c in columns], rotation=45)
    ax.set_yticks(np.arange(len(rows)), [_short(str(r)) for r in rows])
    midpoint = (vmin + vmax) / 2
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if np.isnan(value) else f"{value:.2f}"
        colour = "black" if np.isnan(value) or value > midpoint else "white"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    return _png(fig)


def histogram_comparison(
    edges: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str, xlabel: str
) -> bytes:
    """Pre-binned histograms drawn as outlines over shared edges, normalised to shares so
    versions of different sizes compare."""
    fig = Figure(figsize=(WIDTH, 3.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, binned) in enumerate(series.items()):
        counts = np.asarray(binned, dtype=float)
        total = counts.sum()
        shares = counts / total if total > 0 else counts
        ax.stairs(shares, edges, label=name, color=PALETTE[i % len(PALETTE)], linewidth=1.5)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of items")
    ax.legend(fontsize=8)
    return _png(fig)


def reliability_diagram(
    mean_confidence: Sequence[float],
    accuracy: Sequence[float],
    counts: Sequence[int],
    *,
    title: str,
) -> bytes:
    """Accuracy against mean confidence per confidence bin, the diagonal being perfect
    calibration; each point is sized by its number of items."""
    fig = Figure(figsize=(4.2, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="calibrated")
    sizes = 20 + 180 * np.sqrt(np.asarray(counts, dtype=float) / max(max(counts, default=1), 1))
    ax.plot(mean_confidence, accuracy, color=PALETTE[0], linewidth=1)
    ax.scatter(mean_confidence, accuracy, s=sizes, color=PALETTE[0], zorder=3, label="bins")
    for x, y, n in zip(mean_confidence, accuracy, counts, strict=True):
        ax.annotate(f"{n}", (x, y), xytext=(4, -10), textcoords="offset points", fontsize=7)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean confidence")
    ax.set_ylabel("accuracy against the truth")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def accuracy_intervals(
    items: Sequence[int],
    accuracy: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    flagged: Sequence[bool],
    *,
    threshold: float,
) -> bytes:
    """Every annotator in one figure: accuracy against items labelled, with its
    interval; flagged annotators in red, the threshold as a line. Its size does not grow with
    the crowd."""
    fig = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.asarray(items, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    below = np.clip(y - np.asarray(low, dtype=float), 0, None)
    above = np.clip(np.asarray(high, dtype=float) - y, 0, None)
    red = np.asarray(flagged, dtype=bool)
    for mask, colour, label in ((~red, PALETTE[0], "annotators"), (red, PALETTE[3], "flagged")):
        if mask.any():
            ax.errorbar(
                x[mask],
                y[mask],
                yerr=[below[mask], above[mask]],
                fmt="o",
                markersize=3,
                elinewidth=0.6,
                alpha=0.7,
                color=colour,
                label=label,
            )
    ax.axhline(threshold, color="#999999", linestyle="--", linewidth=1, label="threshold")
    if x.size and x.max() > 20 * max(x.min(), 1):  # a long tail of volumes: log scale
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("items labelled")
    ax.set_ylabel("accuracy vs consensus")
    ax.set_title("Every annotator: accuracy and its interval", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)

"""Scores of a classifier's predicted probabilities against the true classes.

One definition of accuracy and macro F1 serves both the validation metric that picks the best
checkpoint during training and the final test report, so the two can never disagree on what
"macro F1" means. Calibration (expected calibration error) is reported beside them because a model
whose probabilities feed review queues must be right about how sure it is, not only right.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from governance.errors import InvalidInputError

ECE_BINS = 15
PROBABILITY_SUM_TOLERANCE = 1e-3


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true classes, columns predictions."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def f1_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class F1 and their mean over the classes that occur (as true or predicted label).

    A class that neither occurs nor is predicted has no F1 (NaN) and is left out of the mean,
    as scikit-learn does when it is not told the labels.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    false_pos = matrix.sum(axis=0) - tp
    false_neg = matrix.sum(axis=1) - tp
    denominator = 2 * tp + false_pos + false_neg
    occurring = denominator > 0
    per_class = np.full(len(tp), np.nan)
    per_class[occurring] = 2 * tp[occurring] / denominator[occurring]
    macro = float(per_class[occurring].mean()) if occurring.any() else 0.0
    return per_class, macro


def accuracy_from_confusion(matrix: np.ndarray) -> float:
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """Top-label ECE: over equal-width confidence bins (lo, hi], sum |B|/n * |acc(B) - conf(B)|."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    # sum of (acc - conf) over a bin is |B| * (acc(B) - conf(B)); divided by n it is the weight too
    return float(np.abs(gap[counts > 0]).sum() / len(confidence))


def _checked(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise InvalidInputError(
            f"probabilities: expected shape (n, {len(classes)}) for classes {list(classes)}, "
            f"got {probabilities.shape}"
        )
    if y_true.ndim != 1 or len(y_true) != len(probabilities):
        raise InvalidInputError(
            f"y_true: expected {len(probabilities)} class indices, got shape {y_true.shape}"
        )
    if len(y_true) == 0:
        raise InvalidInputError("y_true: no rows to evaluate")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise InvalidInputError(f"y_true: expected integer class indices, got dtype {y_true.dtype}")
    if y_true.min() < 0 or y_true.max() >= len(classes):
        raise InvalidInputError(
            f"y_true: class indices must lie in [0, {len(classes)}), got {y_true}"
        )
    if not np.isfinite(probabilities).all() or (probabilities < 0).any():
        raise InvalidInputError("probabilities: must be finite and non-negative")
    worst = float(np.abs(probabilities.sum(axis=1) - 1.0).max())
    if worst > PROBABILITY_SUM_TOLERANCE:
        raise InvalidInputError(f"probabilities: rows must sum to 1, one is off by {worst:.3g}")
    return y_true.astype(np.int64), probabilities


def evaluate_predictions(
    y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class F1 and support, confusion matrix and ECE of one split.

    ``y_true`` holds class indices into ``classes``; ``probabilities`` one row per item. The
    prediction is the most probable class (the first one on ties). A class absent from both the
    truth and the predictions has per-class F1 ``None``.
    """
    y_true, probabilities = _checked(y_true, probabilities, classes)
    matrix = confusion_counts(y_true, probabilities.argmax(axis=1), len(classes))
    per_class, macro = f1_from_confusion(matrix)
    return {
        "n": len(y_true),
        "accuracy": accuracy_from_confusion(matrix),
        "macro_f1": macro,
        "per_class_f1": {
            name: None if np.isnan(value) else float(value)
            for name, value in zip(classes, per_class, strict=True)
        },
        "support": {
            name: int(count) for name, count in zip(classes, matrix.sum(axis=1), strict=True)
        },
        "confusion_matrix": matrix.tolist(),
        "expected_calibration_error": expected_calibration_error(y_true, probabilities),
    }


def confusion_matrix_png(matrix: Sequence[Sequence[int]], classes: list[str], title: str) -> bytes:
    """The confusion matrix as a PNG (rows true, columns predicted), byte-identical on reruns."""
    counts = np.asarray(matrix)
    if counts.shape != (len(classes), len(classes)):
        raise InvalidInputError(
            f"matrix: expected shape ({len(classes)}, {len(classes)}) for classes {classes}, "
            f"got {counts.shape}"
        )
    side = 1.6 + 0.6 * len(classes)
    figure = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes)
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > threshold else "black"
        axes.text(column, row, str(value), ha="center", va="center", color=colour)
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, labels=classes, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return figure_png(figure)


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, laid out, with no software stamp (equal figures, equal bytes)."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def average_probabilities(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Several models' class probabilities averaged row by row (rows still sum to 1): an
    ensemble's prediction, in training's competition and in the served model alike."""
    if not probabilities:
        raise InvalidInputError("an ensemble needs at least one member")
    shapes = {p.shape for p in probabilities}
    if len(shapes) != 1:
        raise InvalidInputError(f"members disagree on the shape of their output: {shapes}")
    return np.mean(np.stack(probabilities), axis=0)

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from governance.finetune.evaluation import (
    confusion_matrix_png,
    evaluate_predictions,
    expected_calibration_error,
)

CLASSES = ["spam", "ham", "promo", "other"]


def random_case(seed: int, n: int = 400, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(k, 0.7), size=n)
    # truth that agrees with the prediction more often than chance, so every score is non-trivial
    y_true = np.where(rng.random(n) < 0.6, probabilities.argmax(axis=1), rng.integers(0, k, n))
    return y_true, probabilities


def reference_ece(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 15) -> float:
    """Guo et al. (2017): bins (lo, hi] over the top-label confidence."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        members = (confidence > lo) & (confidence <= hi)
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            total += members.mean() * gap
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_scikit_learn(seed: int) -> None:
    y_true, probabilities = random_case(seed)
    y_pred = probabilities.argmax(axis=1)
    report = evaluate_predictions(y_true, probabilities, CLASSES)

    assert report["n"] == len(y_true)
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    per_class = f1_score(y_true, y_pred, average=None)
    assert list(report["per_class_f1"]) == CLASSES
    assert list(report["per_class_f1"].values()) == pytest.approx(per_class, abs=1e-12)
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    assert list(report["support"].values()) == np.bincount(y_true, minlength=4).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ece_matches_a_reference_loop(seed: int) -> None:
    y_true, probabilities = random_case(seed, n=1000)
    expected = reference_ece(y_true, probabilities)
    assert expected > 0.01
    assert expected_calibration_error(y_true, probabilities) == pytest.approx(expected, abs=1e-12)
    report = evaluate_predictions(y_true, probabilities, CLASSES)
    assert report["expected_calibration_error"] == pytest.approx(expected, abs=1e-12)


def test_ece_of_a_hand_computed_case() -> None:
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.38, 0.62], [0.55, 0.45]])
    y_true = np.array([0, 1, 1, 0])
    # bin (0.867, 0.933]: 2 items, accuracy 0.5, confidence 0.9 -> 2/4 * 0.4   = 0.2
    # bin (0.600, 0.667]: 1 item,  accuracy 1.0, confidence 0.62 -> 1/4 * 0.38 = 0.095
    # bin (0.533, 0.600]: 1 item,  accuracy 1.0, confidence 0.55 -> 1/4 * 0.45 = 0.1125
    assert expected_calibration_error(y_true, probabilities) == pytest.approx(0.4075, abs=1e-12)


def test_confident_and_always_right_is_perfectly_calibrated() -> None:
    probabilities = np.eye(3)[[0, 1, 2, 2]]
    report = evaluate_predictions(np.array([0, 1, 2, 2]), probabilities, ["a", "b", "c"])
    assert report["expected_calibration_error"] == 0.0
    assert report["accuracy"] == 1.0
    assert report["macro_f1"] == 1.0


def test_a_class_never_seen_nor_predicted_has_no_f1_and_is_left_out_of_the_mean() -> None:
    y_true = np.array([0, 0, 1, 1, 1])
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1]] + [[0.1, 0.8, 0.1]] * 2
    )
    report = evaluate_predictions(y_true, probabilities, ["a", "b", "c"])
    y_pred = probabilities.argmax(axis=1)
    assert report["per_class_f1"]["c"] is None
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert report["support"] == {"a": 2, "b": 3, "c": 0}


def test_ties_go_to_the_first_class() -> None:
    report = evaluate_predictions(np.array([1]), np.array([[0.5, 0.5]]), ["a", "b"])
    assert report["confusion_matrix"] == [[0, 0], [1, 0]]


@pytest.mark.parametrize(
    ("y_true", "probabilities", "message"),
    [
        (np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]), "expected shape"),
        (np.array([0]), np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]), "y_true"),
        (np.array([0, 3]), np.full((2, 3), 1 / 3), r"\[0, 3\)"),
        (np.array([0.0, 1.0]), np.full((2, 3), 1 / 3), "integer"),
        (np.array([0, 1]), np.array([[0.5, 0.2, 0.1], [0.2, 0.3, 0.5]]), "sum to 1"),
        (np.array([0, 1]), np.array([[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]]), "finite"),
        (np.array([], dtype=int), np.zeros((0, 3)), "no rows"),
    ],
)
def test_bad_input_is_refused(y_true: np.ndarray, probabilities: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(y_true, probabilities, ["a", "b", "c"])


def test_confusion_png_is_a_deterministic_image() -> None:
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
    first = confusion_matrix_png(matrix, ["neg", "neu", "pos"], "test split")
    second = confusion_matrix_png(matrix, ["neg", "neu", "pos"], "test split")
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert first == second
    assert b"Software" not in first
    pixels = imread(io.BytesIO(first), format="png")
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
    assert pixels[..., :3].std() > 0.05  # something was drawn
    assert (
        confusion_matrix_png([[1, 0, 0], [0, 1, 0], [0, 0, 2]], ["neg", "neu", "pos"], "t") != first
    )


def test_confusion_png_refuses_a_matrix_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="expected shape"):
        confusion_matrix_png([[1, 2], [3, 4]], ["a", "b", "c"], "t")

"""The demo consensus check against scikit-learn's calibration curve and the feed's own truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from governance.demo.consensus_check import check_consensus, check_page, reliability_table
from governance.pipeline import DayRun, run_day
from tests.contracts import shipped_contract
from tests.feeds import demo_feed

DAYS = ["2026-06-01", "2026-06-02"]


def test_reliability_bins_match_sklearns_calibration_curve() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.3, 1.0, 2000)
    correct = rng.random(2000) < confidence**2
    table = reliability_table(confidence, correct, bins=10)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=10)
    assert np.allclose(table["accuracy"], accuracy, atol=1e-12)
    assert np.allclose(table["mean_confidence"], mean_confidence, atol=1e-12)
    assert table["items"].sum() == 2000 and table["low"].min() == pytest.approx(0.3)


def test_a_confidence_of_one_falls_in_the_last_bin() -> None:
    table = reliability_table(np.array([1.0, 0.95, 0.05]), np.array([True, False, True]))
    assert table["items"].tolist() == [1, 2]
    assert table["high"].tolist() == [pytest.approx(0.1), pytest.approx(1.0)]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("consensus-check")
    truths = demo_feed(root, DAYS[0], len(DAYS), items_per_day=150, seed=11)
    contract = shipped_contract("demo_reviews", DAYS[0])
    for day in DAYS:
        run_day(DayRun(contract=contract, day=day, root=root, run_id=f"check-{day}"))
    return truths, root / "curated" / "demo_reviews"


def test_plurality_misses_exactly_the_items_whose_votes_were_all_flipped(published) -> None:
    """The feed keeps every unflipped item's majority on its true label."""
    truths, curated = published
    check = check_consensus(truths, curated)
    consensus = pd.concat(
        [pd.read_parquet(curated / day / "consensus.parquet") for day in DAYS], ignore_index=True
    )
    flipped = {item for truth in truths for item in truth.flipped_items}
    published_flipped = consensus["item_id"].isin(flipped).sum()
    assert check.items == len(consensus) and published_flipped > 0
    assert check.plurality_accuracy == pytest.approx(1 - published_flipped / len(consensus))
    labels = {k: v for truth in truths for k, v in truth.true_labels.items()}
    right = (consensus["consensus_label"] == consensus["item_id"].map(labels)).mean()
    assert check.accuracy == pytest.approx(right)
    changed = consensus["consensus_label"] != consensus["plurality_label"]
    assert check.changed == changed.sum()


def test_the_page_shows_the_figures_and_the_reliability_diagram(published) -> None:
    truths, curated = published
    check = check_consensus(truths, curated)
    html = check_page(check, "demo <consensus>")
    assert "demo &lt;consensus&gt;" in html and "<script" not in html
    assert html.count('src="data:image/png;base64,') == 1
    assert f"{check.calibration_error:.4f}" in html
    gaps = (check.reliability["accuracy"] - check.reliability["mean_confidence"]).abs()
    weights = check.reliability["items"] / check.items
    assert check.calibration_error == pytest.approx(float((gaps * weights).sum()))

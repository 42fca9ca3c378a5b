"""The aggregation benchmark's claim, on the generator's truth: ``auto`` is never below
plurality and within half a point of the best aggregator on every regime."""

from __future__ import annotations

import pytest

from governance.audit.aggregators import AGGREGATORS
from governance.demo.aggregation import measure_calibration, measure_regime
from governance.demo.crowd import REGIMES, generate_crowd

SEEDS = 10  # as bench/bench_aggregation.py reports them


@pytest.fixture(scope="module", params=REGIMES, ids=lambda regime: regime.name)
def measured(request):
    return measure_regime(request.param, SEEDS)


def test_auto_is_never_below_plurality(measured) -> None:
    assert measured.accuracy["auto"] >= measured.accuracy["plurality"]


def test_auto_is_within_half_a_point_of_the_best_aggregator(measured) -> None:
    assert set(measured.accuracy) == {*AGGREGATORS, "auto"}
    assert measured.auto_gap <= 0.5


def test_the_regimes_hold_what_the_benchmark_promises() -> None:
    """Long tails, spammers, confused workers, items without an absolute majority, 3-10 classes."""
    assert {regime.classes for regime in REGIMES} >= {3, 10}
    long_tail = generate_crowd(REGIMES[1], seed=0)
    volumes = long_tail.votes["annotator"].value_counts()
    assert (volumes < 5).sum() >= 0.3 * len(volumes)
    assert any(regime.spammers for regime in REGIMES) and any(r.confused for r in REGIMES)
    assert any(regime.weak for regime in REGIMES)
    spammy = generate_crowd(REGIMES[2], seed=0)
    counts = spammy.votes.groupby("item_id")["label"].agg(lambda v: v.value_counts().iloc[0])
    assert (counts * 2 <= 5).mean() > 0.2
    assert set(spammy.kinds) == {"good", "weak", "spammer"}


@pytest.mark.parametrize("regime", REGIMES, ids=lambda regime: regime.name)
def test_the_one_coin_posterior_is_a_calibrated_confidence(regime) -> None:
    """Whichever aggregator ``auto`` picks, the one-coin posterior of its label says how often
    it is right; vote shares, the naive alternative, do not."""
    calibration = measure_calibration(regime)
    assert calibration.posterior < 0.06
    assert calibration.posterior < calibration.vote_share

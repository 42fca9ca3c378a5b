"""Governance figures as statsd gauges, captured by a real UDP listener."""

from __future__ import annotations

import pytest

from governance import metrics
from tests.manifests import manifest_dict, privacy_figures, sample_manifest
from tests.statsd_listener import StatsdListener

MANIFEST = sample_manifest()


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch):
    collector = StatsdListener()
    monkeypatch.setenv(metrics.PORT_ENV, str(collector.port))
    monkeypatch.setenv(metrics.PREFIX_ENV, "gov_test")
    yield collector
    collector.close()


def test_every_figure_of_the_manifest_arrives_with_its_value(listener: StatsdListener) -> None:
    metrics.emit(metrics.governance_figures(MANIFEST))
    got = listener.gauges()
    expected = {
        "rows_in": 1204,
        "quarantined": 43,
        "quarantined_by_reason.json_error": 1,
        "quarantined_by_reason.text_length_outside_20_500": 9,
        "quarantined_by_reason.label_conflict": 23,
        "quarantined_by_reason.bridges_splits": 10,
        "duplicates.exact": 16,
        "duplicates.near": 16,
        "split.train": 284,
        "split.val": 37,
        "split.test": 35,
        "alpha": -0.125,
        "suspected_errors": 11,
        "suspected_error_rate": 0.031,
        "gate.passed": 0,
        "gate.failed_checks": 2,
    }
    assert got == {f"gov_test.demo_reviews.{k}": float(v) for k, v in expected.items()}


def test_the_privacy_figures_are_sent_when_the_manifest_has_them(
    listener: StatsdListener,
) -> None:
    privacy = privacy_figures(400, 12, {"email": 7, "phone": 5})
    metrics.emit(metrics.governance_figures(sample_manifest(privacy=privacy)))
    got = listener.gauges()
    assert got["gov_test.demo_reviews.pii_items"] == 12.0
    assert got["gov_test.demo_reviews.pii_rate"] == 0.03


def test_counters_add_up(listener: StatsdListener) -> None:
    metrics.count("sms_spam.deadline_miss")
    metrics.count("sms_spam.deadline_miss")
    assert listener.counters() == {"gov_test.sms_spam.deadline_miss": 2.0}


def test_a_single_label_first_version_sends_no_alpha_and_no_drift() -> None:
    audit = manifest_dict()["audit"] | {"agreement": None, "label_errors": None}
    names = metrics.governance_figures(sample_manifest(audit=audit))
    assert not any(name.endswith((".alpha", ".suspected_errors")) for name in names)


def test_every_emitted_name_is_declared() -> None:
    declared = [name.replace("<dataset>", "demo_reviews") for name in metrics.METRIC_NAMES]
    for name in metrics.governance_figures(MANIFEST):
        assert any(
            name == d or ("<" in d and name.startswith(d.split("<")[0])) for d in declared
        ), name


def test_no_collector_or_a_broken_setting_never_fails_a_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(metrics.PORT_ENV, "9")  # discard port: nothing listens
    metrics.emit({"x.rows_in": 1.0})
    assert metrics.count("x.deadline_miss")
    monkeypatch.setenv(metrics.PORT_ENV, "not-a-port")
    metrics.emit({"x.rows_in": 1.0})
    assert not metrics.count("x.deadline_miss")
    assert "could not send 1 figures" in caplog.text and "could not count" in caplog.text

"""Governance metrics reach a real statsd collector while the DAG runs through Airflow."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from governance import metrics
from tests.integration.helpers import manifests, run_days
from tests.statsd_listener import StatsdListener

pytestmark = pytest.mark.airflow
DAY = "2026-10-01"


def test_a_nights_figures_arrive_with_the_manifests_values(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.demo.feed import generate_feed

    listener = StatsdListener()
    monkeypatch.setenv(metrics.PORT_ENV, str(listener.port))
    monkeypatch.setenv("GOVERNANCE_DATA_ROOT", str(tmp_path))
    generate_feed(tmp_path / "landing", tmp_path / "truth", dt.date.fromisoformat(DAY), 1, 150, 2)
    run_days("demo_reviews", [DAY])
    got = listener.gauges()
    listener.close()

    (manifest,) = manifests(tmp_path, "demo_reviews", [DAY])
    counts, audit = manifest["counts"], manifest["audit"]
    name = "governance.demo_reviews."
    assert got[name + "rows_in"] == manifest["conservation"]["rows_in"]
    assert got[name + "quarantined"] == manifest["conservation"]["quarantined"]
    assert got[name + "duplicates.exact"] == counts["duplicates"]["exact"]
    assert got[name + "duplicates.near"] == counts["duplicates"]["near"]
    for split in ("train", "val", "test"):
        assert got[name + f"split.{split}"] == counts["splits"][split]["items"]
    assert got[name + "alpha"] == pytest.approx(audit["agreement"]["krippendorff_alpha"])
    assert got[name + "suspected_errors"] == audit["label_errors"]["suspected"]
    assert got[name + "gate.passed"] == 1.0 and got[name + "gate.failed_checks"] == 0
    by_reason = {k: v for k, v in got.items() if ".quarantined_by_reason." in k}
    assert sum(by_reason.values()) == sum(counts["quarantined"]["by_reason"].values())

"""The training snapshot: every published day up to a version, frozen test split, atomic."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from governance.demo.feed import generate_feed
from governance.frames import SPLITS
from governance.pipeline import DayRun, run_day
from governance.publish import read_manifest
from governance.snapshot import SnapshotError, build_snapshot, latest_version, resolve_version
from tests.contracts import shipped_contract
from tests.gate_feed import write_failing_day

DAYS = ["2026-07-01", "2026-07-02", "2026-07-03"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("snapshot")
    generate_feed(root / "landing", root / "truth", dt.date.fromisoformat(DAYS[0]), 2, 150, seed=9)
    write_failing_day(root / "landing", DAYS[2])
    contract = shipped_contract("demo_reviews", DAYS[0])
    for day in DAYS[:2]:
        run_day(DayRun(contract, day, root=root, run_id=f"r-{day}"))
    return root


def published(root: Path, day: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(root / "curated" / "demo_reviews" / day / f"{split}.parquet")


def test_a_snapshot_holds_every_published_day_up_to_the_version(root: Path) -> None:
    folder = build_snapshot(root, "demo_reviews", DAYS[1])
    for split in SPLITS:
        expected = pd.concat([published(root, d, split) for d in DAYS[:2]], ignore_index=True)
        snapshot = pd.read_parquet(folder / f"{split}.parquet")
        assert snapshot["item_id"].tolist() == expected["item_id"].tolist()
        assert (snapshot["split"] == split).all()
    early = pd.read_parquet(build_snapshot(root, "demo_reviews", DAYS[0]) / "test.parquet")
    later = pd.read_parquet(folder / "test.parquet")
    assert set(early["item_id"]) < set(later["item_id"])  # the test split only grows


def test_the_manifest_names_each_version_with_its_manifest_hash(root: Path) -> None:
    manifest = read_manifest(build_snapshot(root, "demo_reviews", DAYS[1]))
    assert [v["version"] for v in manifest["versions"]] == DAYS[:2]
    for entry in manifest["versions"]:
        path = root / entry["path"] / "manifest.json"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["manifest_sha256"]
    assert manifest["contract"]["labels"]["classes"] == ["positive", "neutral", "negative"]


def test_building_it_again_reuses_it(root: Path) -> None:
    folder = build_snapshot(root, "demo_reviews", DAYS[1])
    before = (folder / "manifest.json").stat().st_mtime_ns
    assert build_snapshot(root, "demo_reviews", DAYS[1]) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == before


def test_only_published_versions_that_passed_the_gate_are_trained_on(root: Path) -> None:
    contract = shipped_contract("demo_reviews", DAYS[0])
    with pytest.raises(Exception, match="gate failed"):
        run_day(DayRun(contract, DAYS[2], root=root, run_id="bad"))
    with pytest.raises(SnapshotError, match=f"version {DAYS[2]} is not published"):
        build_snapshot(root, "demo_reviews", DAYS[2])
    assert latest_version(root, "demo_reviews") == DAYS[1]
    assert resolve_version(root, "demo_reviews", None) == DAYS[1]
    with pytest.raises(SnapshotError, match="no published version"):
        resolve_version(root, "sms_spam", None)

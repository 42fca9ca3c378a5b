"""The stages chained in one process (no Airflow): conservation, history, reruns, crashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from governance import publish
from governance.errors import EmptyPartitionError, GateFailedError
from governance.frames import SPLITS
from governance.history import Ledger, Settlement
from governance.pipeline import DayRun, load_history, published_versions, run_day
from governance.publish import ConservationError, read_manifest
from governance.tables import FORMULA_TRIGGERS
from tests.contracts import shipped_contract
from tests.feeds import demo_feed
from tests.gate_feed import EXPECTED_FAILURES, write_failing_day

DAYS = ["2026-06-01", "2026-06-02", "2026-06-03"]


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    demo_feed(tmp_path, DAYS[0], len(DAYS), items_per_day=150, seed=5)
    return tmp_path


def day_run(root: Path, day: str, **kwargs) -> DayRun:
    contract = shipped_contract("demo_reviews", DAYS[0])
    return DayRun(contract=contract, day=day, root=root, run_id=f"test-{day}", **kwargs)


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))
    }


def test_every_row_is_accounted_for_each_day(feed: Path) -> None:
    for day in DAYS:
        manifest = run_day(day_run(feed, day))
        cons = manifest["conservation"]
        lines = sum(
            1
            for f in (feed / "landing" / "demo_reviews" / day).glob("export-*.jsonl")
            for line in f.read_bytes().splitlines()
            if line.strip()
        )
        assert cons["rows_in"] == lines
        assert cons["holds"]
        on_disk = {
            name: len(pd.read_parquet(feed / "curated" / "demo_reviews" / day / name))
            for name in ("train.parquet", "val.parquet", "test.parquet")
        }
        assert on_disk == {f"{s}.parquet": manifest["counts"]["splits"][s]["items"] for s in SPLITS}
    assert published_versions(feed / "curated" / "demo_reviews") == DAYS


def test_history_only_looks_back(feed: Path) -> None:
    for day in DAYS:
        run_day(day_run(feed, day))
    history, entries = load_history(day_run(feed, DAYS[1]))
    assert [e["version"] for e in entries] == DAYS[:1]
    assert set(history["version"]) == {DAYS[0]}


def test_rerun_of_an_old_day_is_byte_identical_and_later_days_unchanged(feed: Path) -> None:
    for day in DAYS:
        run_day(day_run(feed, day))
    before = {day: digests(feed / "curated" / "demo_reviews" / day) for day in DAYS}
    run_day(day_run(feed, DAYS[0]))
    run_day(day_run(feed, DAYS[2]))
    run_day(day_run(feed, DAYS[1]))
    after = {day: digests(feed / "curated" / "demo_reviews" / day) for day in DAYS}
    assert after == before


def test_a_crash_while_publishing_leaves_nothing_and_the_retry_succeeds(
    feed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = publish.write_parquet
    written = []

    def crash_on_fourth(frame: pd.DataFrame, path: Path) -> None:
        written.append(path.name)
        if len(written) == 4:
            raise OSError("disk vanished")
        real(frame, path)

    monkeypatch.setattr(publish, "write_parquet", crash_on_fourth)
    with pytest.raises(OSError):
        run_day(day_run(feed, DAYS[0]))
    curated = feed / "curated" / "demo_reviews"
    assert published_versions(curated) == []
    assert not (curated / DAYS[0]).exists()

    monkeypatch.setattr(publish, "write_parquet", real)
    manifest = run_day(day_run(feed, DAYS[0]))
    assert manifest["conservation"]["holds"]
    assert sorted(p.name for p in curated.iterdir()) == [DAYS[0]]


def test_dry_run_publishes_nothing_and_leaves_its_report_for_review(feed: Path) -> None:
    manifest = run_day(day_run(feed, DAYS[0], dry_run=True))
    assert manifest["dry_run"] and not manifest["published"]
    assert not (feed / "curated").exists() or not any((feed / "curated").rglob("*.parquet"))
    assert not any((feed / "work").rglob("*.parquet"))
    assert read_manifest(feed / "unpublished" / "demo_reviews" / DAYS[0])["dry_run"]


def test_a_lost_row_stops_the_publication(feed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import version

    real_build = version.build_tables
    lost: list[int] = []

    def lose_one(run: DayRun) -> dict[str, pd.DataFrame]:
        tables = real_build(run)
        lost.append(int(tables["train"]["n_source_rows"].iloc[0]))
        tables["train"] = tables["train"].iloc[1:]
        return tables

    monkeypatch.setattr(version, "build_tables", lose_one)
    with pytest.raises(ConservationError, match=r"\(\+(\d+) rows unaccounted\)") as err:
        run_day(day_run(feed, DAYS[0]))
    assert f"(+{lost[0]} rows unaccounted)" in str(err.value)
    assert not (feed / "curated" / "demo_reviews" / DAYS[0]).exists()


def test_manifest_records_inputs_with_their_hashes(feed: Path) -> None:
    run_day(day_run(feed, DAYS[0]))
    manifest = read_manifest(feed / "curated" / "demo_reviews" / DAYS[0])
    landing = feed / "landing" / "demo_reviews" / DAYS[0]
    expected = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in landing.glob("export-*.jsonl")
    }
    assert {f["name"]: f["sha256"] for f in manifest["inputs"]} == expected


def test_a_feed_failing_every_threshold_is_refused_with_every_reason(feed: Path) -> None:
    run_day(day_run(feed, DAYS[0]))
    write_failing_day(feed / "landing", DAYS[1])
    with pytest.raises(GateFailedError) as err:
        run_day(day_run(feed, DAYS[1]))
    refused = feed / "unpublished" / "demo_reviews" / DAYS[1]
    manifest = read_manifest(refused)
    gate = manifest["gate"]
    assert gate["status"] == "failed" and not manifest["published"]
    assert set(gate["failed"]) == EXPECTED_FAILURES
    for check in gate["checks"]:
        assert check["passed"] is False
        assert check["description"] in str(err.value)
    assert str(err.value) == gate["message"]
    assert published_versions(feed / "curated" / "demo_reviews") == DAYS[:1]
    report = refused / "report.html"
    assert (
        manifest["outputs"]["report.html"]["sha256"]
        == hashlib.sha256(report.read_bytes()).hexdigest()
    )


def test_threshold_overrides_let_the_same_feed_through(feed: Path) -> None:
    run_day(day_run(feed, DAYS[0]))
    write_failing_day(feed / "landing", DAYS[1])
    loose = {name: (0 if name.startswith("min") else 1.0) for name in EXPECTED_FAILURES}
    loose["min_alpha"] = -1.0
    contract = shipped_contract("demo_reviews", DAYS[0])
    relaxed = contract.model_copy(update={"gate": contract.gate.model_copy(update=loose)})
    run = DayRun(contract=relaxed, day=DAYS[1], root=feed, run_id="relaxed")
    manifest = run_day(run)
    assert manifest["gate"]["status"] == "passed" and manifest["published"]


def test_dry_run_reports_a_failed_gate_without_publishing_or_failing(feed: Path) -> None:
    run_day(day_run(feed, DAYS[0]))
    write_failing_day(feed / "landing", DAYS[1])
    manifest = run_day(day_run(feed, DAYS[1], dry_run=True))
    assert manifest["gate"]["status"] == "failed" and not manifest["published"]
    assert (feed / "unpublished" / "demo_reviews" / DAYS[1] / "report.html").exists()
    assert published_versions(feed / "curated" / "demo_reviews") == DAYS[:1]


def test_published_version_carries_audit_tables_report_and_queue(feed: Path) -> None:
    manifest = run_day(day_run(feed, DAYS[0]))
    folder = feed / "curated" / "demo_reviews" / DAYS[0]
    for name in ("consensus", "annotator_quality", "annotator_confusion", "review_queue"):
        assert manifest["outputs"][f"{name}.parquet"]["rows"] > 0
    queue_csv = pd.read_csv(folder / "review_queue.csv")
    queue = pd.read_parquet(folder / "review_queue.parquet")
    assert queue_csv["item_id"].tolist() == queue["item_id"].tolist()
    assert len(queue) == manifest["audit"]["label_errors"]["suspected"]
    text_columns = [c for c in queue.columns if pd.api.types.is_string_dtype(queue[c])]
    cells = pd.read_csv(folder / "review_queue.csv", dtype=str, keep_default_na=False)
    for column in text_columns:
        assert not cells[column].str.startswith(FORMULA_TRIGGERS).any(), column
    for name, entry in manifest["outputs"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]


def test_the_consensus_fits_on_the_votes_of_earlier_versions_only(feed: Path) -> None:
    """With a window of two versions, day 3 fits on the published votes of days 1 and 2, and a
    rerun of day 2 (after day 3) fits on day 1's alone, as before, byte for byte."""
    base = shipped_contract("demo_reviews", DAYS[0])
    contract = base.model_copy(
        update={"audit": base.audit.model_copy(update={"consensus_window": 2})}
    )

    def run(day: str) -> DayRun:
        return DayRun(contract=contract, day=day, root=feed, run_id=f"window-{day}")

    for day in DAYS:
        run_day(run(day))
    curated = feed / "curated" / "demo_reviews"
    published_votes = [len(pd.read_parquet(curated / day / "annotations.parquet")) for day in DAYS]
    figures = [read_manifest(curated / day)["audit"]["consensus"] for day in DAYS]
    earlier = [f["earlier_votes"] for f in figures]
    assert earlier == [0, published_votes[0], sum(published_votes[:2])]
    tonight = len(pd.read_parquet(curated / DAYS[2] / "annotations.parquet"))
    assert figures[2]["fitted_votes"] == tonight + sum(published_votes[:2])
    before = digests(curated / DAYS[1])
    run_day(run(DAYS[1]))
    assert digests(curated / DAYS[1]) == before


def _empty_partition(root: Path, day: str) -> Path:
    folder = root / "landing" / "demo_reviews" / day
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / "export-01.jsonl").write_text("\n\n")
    return folder


def test_an_empty_partition_fails_naming_its_files(feed: Path) -> None:
    _empty_partition(feed, DAYS[0])
    with pytest.raises(EmptyPartitionError, match=r"export-01\.jsonl \(2 bytes, no data row\)"):
        run_day(day_run(feed, DAYS[0]))
    assert Ledger(feed, "demo_reviews", DAYS[0]).get(DAYS[0]) is None


def test_an_empty_day_the_contract_allows_settles_as_skipped_and_publishes_nothing(
    feed: Path,
) -> None:
    _empty_partition(feed, DAYS[1])
    contract = shipped_contract("demo_reviews", DAYS[0])
    allowing = contract.model_copy(
        update={"landing": contract.landing.model_copy(update={"on_empty": "skip"})}
    )
    run_day(day_run(feed, DAYS[0]))
    result = run_day(DayRun(contract=allowing, day=DAYS[1], root=feed, run_id="test-empty"))
    assert result["state"] == "skipped"
    assert "export-01.jsonl (2 bytes, no data row)" in result["reason"]
    assert not (feed / "curated" / "demo_reviews" / DAYS[1]).exists()
    record = Ledger(feed, "demo_reviews", DAYS[0]).get(DAYS[1])
    assert record is not None and record.status == Settlement.SKIPPED
    assert record.reason.startswith("empty partition: partition folder")
    # The next day settles after it, on the history of the first day alone.
    manifest = run_day(day_run(feed, DAYS[2]))
    assert [v["version"] for v in manifest["history"]["versions"]] == DAYS[:2]


def test_a_hostile_partition_runs_the_night_with_every_row_accounted(feed: Path) -> None:
    folder = feed / "landing" / "demo_reviews" / DAYS[0]
    outside = feed / "elsewhere.jsonl"
    outside.write_text(next(folder.glob("export-*.jsonl")).read_text())
    (folder / "export-99.jsonl").symlink_to(outside)
    (folder / "nested").mkdir()
    (folder / "nested" / "export-50.jsonl").write_text('{"text": "never read"}\n')
    first = sorted(folder.glob("export-0*.jsonl"))[0]
    lines = first.read_text().splitlines()
    first.write_text("\n".join([*lines, lines[0].replace('"text": "', '"text": "\\u0000')]) + "\n")
    manifest = run_day(day_run(feed, DAYS[0]))
    assert manifest["conservation"]["holds"]
    inputs = {entry["name"]: entry for entry in manifest["inputs"]}
    assert inputs["export-99.jsonl"]["status"] == "refused"
    assert inputs["export-99.jsonl"]["refused"].startswith("outside_landing: a symlink to ")
    assert inputs["nested"]["status"] == "skipped"
    assert manifest["counts"]["quarantined"]["by_reason"]["outside_landing"] == 1
    assert manifest["counts"]["quarantined"]["by_reason"]["text: control characters"] == 1
    assert manifest["counts"]["quarantined"]["by_kind"]["landing"] == 1
    assert set(manifest["hygiene"]) == {
        "control_stripped",
        "bidi_stripped",
        "invisible_stripped",
        "normalized",
    }

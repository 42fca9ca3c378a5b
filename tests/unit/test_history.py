"""Days settle in order: the ledger, recorded histories, cascades, reconcile, concurrency."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from governance import pipeline, version
from governance.demo.feed import generate_feed
from governance.errors import GateFailedError
from governance.history import (
    HistoryNotSettledError,
    Ledger,
    SettlementError,
    data_digest,
    history_digest,
    verify,
)
from governance.pipeline import DayRun, run_day
from governance.publish import STAGING_PREFIX, publish_version, read_manifest
from governance.reconcile import reconcile, stale_days
from governance.snapshot import SnapshotError, resolve_version
from tests.contracts import shipped_contract
from tests.gate_feed import write_failing_day

DATASET = "demo_reviews"
START = "2026-05-01"
DAYS = [f"2026-05-{d:02d}" for d in range(1, 6)]
CONTRACT = shipped_contract(DATASET, START)


def make_feed(root: Path, days: int = len(DAYS), items: int = 300) -> Path:
    generate_feed(root / "landing", root / "truth", dt.date.fromisoformat(START), days, items, 11)
    return root


def day_run(root: Path, day: str, run_id: str | None = None, **kwargs) -> DayRun:
    return DayRun(CONTRACT, day, root=root, run_id=run_id or f"r-{day}", **kwargs)


def data_files(root: Path, day: str) -> dict[str, str]:
    """sha256 of every data file of a published version (the report names its run)."""
    folder = root / "curated" / DATASET / day
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name not in ("report.html", "manifest.json")
    }


def change_one_input(root: Path, day: str) -> None:
    """Drop the last vote line of the day's first export (a corrected late file)."""
    path = sorted((root / "landing" / DATASET / day).glob("export-*.jsonl"))[0]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-40]))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_feed(tmp_path_factory.mktemp("sequential"))
    for day in DAYS:
        run_day(day_run(root, day))
    return root


def copy_landing(source: Path, target: Path) -> Path:
    shutil.copytree(source / "landing", target / "landing")
    return target


# ---------------------------------------------------------------- ordering


def test_a_day_waits_for_every_earlier_day_since_the_start(tmp_path: Path) -> None:
    root = make_feed(tmp_path, days=3)
    run_day(day_run(root, DAYS[0]))
    pipeline.stage_ingest(day_run(root, DAYS[2]))
    pipeline.stage_privacy(day_run(root, DAYS[2]))
    with pytest.raises(HistoryNotSettledError, match=f"waiting for {DAYS[1]} to settle"):
        pipeline.stage_dedup(day_run(root, DAYS[2]))
    assert not (root / "curated" / DATASET / DAYS[2]).exists()


def test_a_day_before_the_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettlementError, match="before the dataset's start"):
        Ledger(tmp_path, DATASET, START).require_settled("2026-04-30")


def test_the_waiting_error_is_retried_and_a_refusal_is_not() -> None:
    from governance.errors import NonRetryableError

    assert not issubclass(HistoryNotSettledError, NonRetryableError)
    assert issubclass(SettlementError, NonRetryableError)


def test_a_skipped_day_settles_and_cannot_hide_a_published_one(tmp_path: Path) -> None:
    root = make_feed(tmp_path, days=3)
    shutil.rmtree(root / "landing" / DATASET / DAYS[1])
    run_day(day_run(root, DAYS[0]))
    ledger = Ledger(root, DATASET, START)
    with pytest.raises(SettlementError, match="needs a reason"):
        ledger.skip(DAYS[1], "  ")
    ledger.skip(DAYS[1], "feed outage, confirmed by the vendor")
    manifest = run_day(day_run(root, DAYS[2]))
    assert [e["status"] for e in manifest["history"]["versions"]] == ["published", "skipped"]
    with pytest.raises(SettlementError, match="is published"):
        ledger.skip(DAYS[0], "oops")


def test_each_manifest_records_the_history_it_was_computed_from(sequential: Path) -> None:
    manifest = read_manifest(sequential / "curated" / DATASET / DAYS[3])
    versions = manifest["history"]["versions"]
    assert [v["version"] for v in versions] == DAYS[:3]
    for entry in versions:
        folder = sequential / "curated" / DATASET / entry["version"]
        assert entry["digest"] == data_digest(read_manifest(folder)["outputs"])
    assert manifest["history"]["digest"] == history_digest(versions)
    assert manifest["state"] == "current"
    report = (sequential / "curated" / DATASET / DAYS[3] / "report.html").read_text()
    assert all(day in report for day in DAYS[:3])
    assert verify(Ledger(sequential, DATASET, START)) == []


# ---------------------------------------------------------------- reruns cascade


def test_an_identical_rerun_marks_nothing_stale(sequential: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(sequential, root)
    manifest = run_day(day_run(root, DAYS[1], run_id="again"))
    assert manifest["marked_stale"] == []
    assert verify(Ledger(root, DATASET, START)) == []


def test_republishing_a_middle_day_marks_later_days_stale_until_reconciled(
    sequential: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(sequential, root)
    change_one_input(root, DAYS[2])
    manifest = run_day(day_run(root, DAYS[2], run_id="late-file"))
    assert manifest["marked_stale"] == DAYS[3:]
    ledger = Ledger(root, DATASET, START)
    for day in DAYS[3:]:
        later = read_manifest(root / "curated" / DATASET / day)
        assert later["state"] == "stale"
        assert later["stale_reason"]
    assert stale_days(ledger) == DAYS[3:]
    problems = [str(f) for f in verify(ledger)]
    assert any(p.startswith(f"{DAYS[3]}: stale: {DAYS[2]} was republished") for p in problems)
    # Stale versions are not offered to the fine-tune; the ones before the change still are.
    assert resolve_version(root, DATASET, None) == DAYS[2]
    with pytest.raises(SnapshotError, match="reconcile"):
        resolve_version(root, DATASET, DAYS[4])
    # A later day cannot be computed on a stale history either.
    with pytest.raises(HistoryNotSettledError, match=DAYS[3]):
        pipeline.load_history(day_run(root, "2026-05-06"))

    assert reconcile(CONTRACT, root, progress=lambda _: None) == DAYS[3:]
    assert verify(Ledger(root, DATASET, START)) == []

    fresh = copy_landing(root, tmp_path / "fresh")
    for day in DAYS:
        run_day(day_run(fresh, day))
    for day in DAYS:
        assert data_files(root, day) == data_files(fresh, day), day
    assert data_files(root, DAYS[3]) != data_files(sequential, DAYS[3])


def test_a_history_changed_during_a_run_publishes_the_day_as_stale(
    sequential: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(sequential, root)
    late = day_run(root, DAYS[4], run_id="slow")
    for stage in (
        pipeline.stage_ingest,
        pipeline.stage_privacy,
        pipeline.stage_dedup,
        pipeline.stage_split,
    ):
        stage(late)
    change_one_input(root, DAYS[1])
    run_day(day_run(root, DAYS[1], run_id="fix"))
    for stage in (pipeline.stage_audit, version.stage_gate):
        stage(late)
    manifest = version.stage_publish(late)
    assert manifest["state"] == "stale"
    assert DAYS[4] in stale_days(Ledger(root, DATASET, START))
    reconcile(CONTRACT, root, progress=lambda _: None)
    assert verify(Ledger(root, DATASET, START)) == []


def test_a_refused_day_published_later_cascades(tmp_path: Path) -> None:
    root = make_feed(tmp_path, days=3)
    write_failing_day(root / "landing", DAYS[1])
    run_day(day_run(root, DAYS[0]))
    with pytest.raises(GateFailedError):
        run_day(day_run(root, DAYS[1]))
    ledger = Ledger(root, DATASET, START)
    assert ledger.get(DAYS[1]).status == "refused"
    run_day(day_run(root, DAYS[2]))  # a refused day is settled: later days go on
    loose = CONTRACT.gate.model_copy(
        update={
            "max_quarantine_rate": 1.0,
            "max_duplicate_rate": 1.0,
            "min_alpha": -1.0,
            "max_suspected_error_rate": 1.0,
            "min_rows_per_class_per_split": 0,
            "max_class_drift": 1.0,
            "max_pii_rate": 1.0,
        }
    )
    override = CONTRACT.model_copy(update={"gate": loose})
    manifest = run_day(DayRun(override, DAYS[1], root=root, run_id="override"))
    assert manifest["marked_stale"] == [DAYS[2]]
    assert ledger.get(DAYS[1]).status == "published"


def test_a_rerun_refused_by_the_gate_withdraws_the_published_version(tmp_path: Path) -> None:
    root = make_feed(tmp_path, days=2)
    for day in DAYS[:2]:
        run_day(day_run(root, day))
    digest = Ledger(root, DATASET, START).get(DAYS[1]).digest
    write_failing_day(root / "landing", DAYS[1])
    with pytest.raises(GateFailedError):
        run_day(day_run(root, DAYS[1], run_id="worse"))
    assert not (root / "curated" / DATASET / DAYS[1]).exists()
    kept = root / "withdrawn" / DATASET / f"{DAYS[1]}-{digest[:12]}"
    assert read_manifest(kept)["version"] == DAYS[1]
    assert Ledger(root, DATASET, START).get(DAYS[1]).status == "refused"
    assert verify(Ledger(root, DATASET, START)) == []


def test_verify_finds_a_tampered_file_and_a_version_without_a_record(
    sequential: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(sequential, root)
    (root / "curated" / DATASET / DAYS[0] / "train.parquet").write_bytes(b"not parquet")
    (root / "state" / DATASET / "days" / f"{DAYS[4]}.json").unlink()
    problems = [str(f) for f in verify(Ledger(root, DATASET, START))]
    assert f"{DAYS[0]}: train.parquet does not match its sha256" in problems
    assert f"{DAYS[4]}: published version with no settled record" in problems


def test_the_verify_command_exits_1_on_a_problem(sequential: Path, tmp_path: Path, capsys) -> None:
    from governance.reconcile import main

    root = tmp_path / "data"
    shutil.copytree(sequential, root)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    raw = CONTRACT.model_dump(mode="json")
    (contracts / f"{DATASET}.yaml").write_text(json.dumps(raw))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_DATA_ROOT", str(root))
        patch.setenv("GOVERNANCE_CONTRACTS_DIR", str(contracts))
        assert main(["verify", DATASET]) == 0
        change_one_input(root, DAYS[3])
        run_day(day_run(root, DAYS[3], run_id="late"))
        assert main(["verify", DATASET]) == 1
    assert f"{DAYS[4]}: stale: {DAYS[3]} was republished with other data" in capsys.readouterr().out


# ---------------------------------------------------------------- concurrency


def run_day_as_a_task(root: Path, day: str) -> int:
    """One day's run as an orchestrator runs it: the stages in order, a stage that must wait for
    an earlier day retried after a pause. Returns how many tries waited."""
    run = day_run(root, day)
    waited = 0
    pipeline.stage_ingest(run)
    pipeline.stage_privacy(run)
    while True:
        try:
            pipeline.stage_dedup(run)
            break
        except HistoryNotSettledError:
            waited += 1
            time.sleep(0.2)
    for stage in (pipeline.stage_split, pipeline.stage_audit, version.stage_gate):
        stage(run)
    version.stage_publish(run)
    return waited


def test_four_concurrent_workers_give_the_sequential_data(sequential: Path, tmp_path: Path) -> None:
    root = copy_landing(sequential, tmp_path / "concurrent")
    with ProcessPoolExecutor(4) as pool:
        waits = list(pool.map(run_day_as_a_task, [root] * len(DAYS), DAYS))
    assert sum(waits) > 0, "the days never overlapped: the test proves nothing"
    for day in DAYS:
        assert data_files(root, day) == data_files(sequential, day), day
    assert verify(Ledger(root, DATASET, START)) == []


def test_two_days_publishing_at_once_keep_to_their_own_staging_folders(tmp_path: Path) -> None:
    import pandas as pd

    curated = tmp_path / "curated"
    other = curated / f"{STAGING_PREFIX}{DAYS[1]}-in-flight"
    own = curated / f"{STAGING_PREFIX}{DAYS[0]}-crashed"
    for folder in (other, own):
        folder.mkdir(parents=True)
    publish_version(curated / DAYS[0], {"t": pd.DataFrame({"a": [1]})}, {"version": DAYS[0]})
    assert other.exists(), "another day's staging folder was removed"
    assert not own.exists(), "the day's own crashed staging folder was left"

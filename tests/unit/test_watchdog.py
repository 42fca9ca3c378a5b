"""The watchdog's checks on fresh and stale states, with known answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from governance.contracts import contracts_dir, load_contract
from governance.history import DayRecord, Ledger, Settlement, data_digest, history_digest
from governance.watchdog import (
    FinalFailure,
    champion_age,
    expected_day,
    freshness,
    history_consistent,
    no_final_failures,
    record_final_failure,
)
from tests.manifests import write_manifest

CONTRACT = load_contract(contracts_dir() / "sms_spam.yaml")  # landing timeout 6 h
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def publish(root: Path, day: str, published: bool = True) -> None:
    write_manifest(root / "curated" / "sms_spam" / day, published=published)


def test_yesterday_is_expected_once_the_nights_landing_wait_is_over() -> None:
    assert expected_day(CONTRACT, NOW) == dt.date(2026, 11, 28)
    early = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)  # still within 6 h + 1 h
    assert expected_day(CONTRACT, early) == dt.date(2026, 11, 27)


def test_fresh_when_yesterdays_version_is_published(tmp_path: Path) -> None:
    publish(tmp_path, "2026-11-28")
    assert freshness(tmp_path, CONTRACT, NOW).ok


def test_stale_says_which_dataset_and_how_many_days_late(tmp_path: Path) -> None:
    publish(tmp_path, "2026-11-25")
    publish(tmp_path, "2026-11-28", published=False)  # a dry run does not count
    result = freshness(tmp_path, CONTRACT, NOW)
    assert not result.ok
    assert result.message == (
        "sms_spam: no curated version for 2026-11-28; the newest is 2026-11-25, 3 days late"
    )
    assert "none yet" in freshness(tmp_path / "empty", CONTRACT, NOW).message


def test_champion_age_against_the_allowance() -> None:
    fresh = champion_age(NOW - dt.timedelta(days=2), "m", 7, NOW)
    assert fresh.ok and "2.0 days old" in fresh.message
    stale = champion_age(NOW - dt.timedelta(days=9, hours=12), "m", 7, NOW)
    assert not stale.ok and "9.5 days old, 2.5 days over the 7 allowed" in stale.message
    assert champion_age(None, "m", 7, NOW).message == "m: no champion registered"


def failure(at: dt.datetime, task: str = "ingest_validate") -> FinalFailure:
    return FinalFailure("govern_sms_spam", task, "scheduled__x", 3, 3, at.isoformat(), "boom")


def test_only_failures_of_the_last_day_count(tmp_path: Path) -> None:
    assert no_final_failures(tmp_path, NOW).ok
    record_final_failure(tmp_path, failure(NOW - dt.timedelta(hours=30), "old"))
    assert no_final_failures(tmp_path, NOW).ok
    record_final_failure(tmp_path, failure(NOW - dt.timedelta(hours=2)))
    result = no_final_failures(tmp_path, NOW)
    assert not result.ok
    assert "govern_sms_spam.ingest_validate (scheduled__x)" in result.message
    assert "after try 3 of 3: boom" in result.message and "old" not in result.message


@pytest.mark.parametrize("hours", [1, 23])
def test_failures_across_midnight_are_found(tmp_path: Path, hours: int) -> None:
    record_final_failure(tmp_path, failure(NOW - dt.timedelta(hours=hours)))
    assert not no_final_failures(tmp_path, NOW).ok


def settle_published(root: Path, day: str, sha256: str, history: list[dict]) -> DayRecord:
    """A version of one data file (no file: the hourly check reads manifests only) settled."""
    outputs = {"data.parquet": {"sha256": sha256 * 64, "bytes": 1}}
    digest = history_digest(history)
    recorded = {"origin": "2026-11-01", "digest": digest, "versions": history}
    write_manifest(root / "curated" / "sms_spam" / day, outputs=outputs, history=recorded)
    record = DayRecord(day, Settlement.PUBLISHED, data_digest(outputs), digest)
    Ledger(root, "sms_spam", "2026-11-01").settle(record)
    return record


def test_history_check_names_the_stale_day_and_the_way_out(tmp_path: Path) -> None:
    contract = CONTRACT.model_copy(update={"start_date": "2026-11-01"})
    first = settle_published(tmp_path, "2026-11-01", "1", [])
    settle_published(tmp_path, "2026-11-02", "2", [first.entry()])
    assert history_consistent(tmp_path, contract).ok
    settle_published(tmp_path, "2026-11-01", "3", [])  # republished with other data
    result = history_consistent(tmp_path, contract)
    assert not result.ok
    assert "2026-11-02: stale: 2026-11-01 was republished" in result.message
    assert "make reconcile DATASET=sms_spam" in result.message


def test_an_empty_day_settled_as_skipped_is_not_late_and_says_why(tmp_path: Path) -> None:
    publish(tmp_path, "2026-11-27")
    ledger = Ledger(tmp_path, "sms_spam", CONTRACT.start_date)
    ledger.skip("2026-11-28", "empty partition: a.csv (empty)", run_id="scheduled__x")
    result = freshness(tmp_path, CONTRACT, NOW)
    assert result.ok
    assert result.message == (
        "sms_spam: 2026-11-28 settled as skipped: empty partition: a.csv (empty)"
    )


def test_a_failed_run_of_the_expected_day_is_named_in_the_freshness_message(
    tmp_path: Path,
) -> None:
    publish(tmp_path, "2026-11-27")
    error = "sms_spam 2026-11-28 ingest: partition folder x has no data row: a.csv (empty)"
    for day, task in (("2026-11-27", "dedup"), ("2026-11-28", "ingest")):
        record_final_failure(
            tmp_path,
            FinalFailure(
                dag_id=CONTRACT.dag_id,
                task_id=task,
                run_id=f"scheduled__{day}",
                try_number=1,
                max_tries=3,
                failed_at="2026-11-29T01:00:00+00:00",
                error=error if day == "2026-11-28" else "another day's failure",
                day=day,
            ),
        )
    result = freshness(tmp_path, CONTRACT, NOW)
    assert not result.ok
    assert result.message == (
        "sms_spam: no curated version for 2026-11-28; the newest is 2026-11-27, 1 day late; "
        f"its run failed at ingest: {error}"
    )

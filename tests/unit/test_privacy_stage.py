"""The privacy stage in the stage table: its revision of the items is what later stages read,
its original stays for a retry, and a retried scan writes the same tables."""

from __future__ import annotations

from pathlib import Path

from governance import frames as F
from governance.demo.pii import inject_pii
from governance.pipeline import DayRun, kept_items, load_table
from governance.stages import stage_named
from tests.contracts import shipped_contract
from tests.feeds import demo_feed

DAY = "2026-06-01"


def test_a_retried_scan_reads_the_original_and_writes_the_same_revision(tmp_path: Path) -> None:
    demo_feed(tmp_path, DAY, 1, items_per_day=150, seed=4)
    landing = tmp_path / "landing" / "demo_reviews" / DAY
    injected = inject_pii(landing, tmp_path / "truth", "demo_reviews", rate=0.1, seed=1)
    run = DayRun(contract=shipped_contract("demo_reviews", DAY), day=DAY, root=tmp_path)
    stage_named("ingest")(run)
    first = stage_named("privacy")(run)
    revision = run.work("items@privacy.parquet").read_bytes()
    again = stage_named("privacy")(run)
    assert first == again and run.work("items@privacy.parquet").read_bytes() == revision
    assert sum(first["entities"].values()) == len(injected)

    original = load_table(run, "items", before="privacy").set_index(F.ITEM_ID)[F.TEXT]
    later = kept_items(run, "dedup").set_index(F.ITEM_ID)[F.TEXT]
    quarantined = set(load_table(run, "quarantine_privacy")[F.ITEM_ID])
    for value in injected:
        assert value.value in original[value.item_id]  # the original keeps what arrived
        if value.item_id in quarantined:
            assert value.item_id not in later.index
        else:
            assert value.value not in later[value.item_id]
            assert f"<{value.entity.upper()}>" in later[value.item_id]
    assert len(later) == len(original) - len(quarantined)

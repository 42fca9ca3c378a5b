"""The stage table: every entry resolves, and a new quarantining stage is one function plus one
entry, with conservation, the manifest and the DAG following from the table."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

from governance import frames as F
from governance import pipeline
from governance.pipeline import DayRun, kept_items, quarantine_items, run_day
from governance.reasons import Reason, ReasonKind
from governance.stages import STAGES, Stage, quarantine_tables, stage_named
from tests.contracts import shipped_contract
from tests.feeds import demo_feed

DAY = "2026-06-01"
MARKER = "refund"


def test_every_stage_resolves_to_a_pipeline_function() -> None:
    for stage in STAGES:
        assert callable(stage.resolve()), stage.name
    assert len({s.name for s in STAGES}) == len({s.task_id for s in STAGES}) == len(STAGES)
    assert [s.name for s in STAGES if s.publishes] == [STAGES[-1].name]


def test_a_misspelt_function_is_refused_by_name() -> None:
    broken = dataclasses.replace(STAGES[0], function="governance.pipeline:stage_ingset")
    with pytest.raises(LookupError, match="stage_ingset"):
        broken.resolve()


def test_the_quarantine_tables_are_those_the_table_declares() -> None:
    assert quarantine_tables() == ["quarantine_ingest", "quarantine_privacy", "quarantine_dedup"]
    with pytest.raises(LookupError):
        stage_named("no_such_stage")


# --- a stage added the documented way: its function (here) and its entry in a table -----------


def stage_no_refunds(run: DayRun) -> dict:
    """Quarantines every item whose text mentions the marker word."""
    items = kept_items(run, "no_refunds")
    mentions = items[F.TEXT].str.contains(MARKER, case=False, regex=False)
    refusal = Reason(ReasonKind.POLICY, "no_refunds", F.TEXT, f"mentions {MARKER}")
    reasons = [[refusal] if mentioned else [] for mentioned in mentions]
    return quarantine_items(run, "no_refunds", items, reasons)


def refusal_record() -> dict[str, str]:
    return {
        "kind": "policy",
        "check": "no_refunds",
        "column": "text",
        "message": f"mentions {MARKER}",
    }


NO_REFUNDS = Stage(
    name="no_refunds",
    task_id="no_refunds",
    function=f"{__name__}:stage_no_refunds",
    doc="Quarantine items that mention refunds.",
    reads=("items",),
    writes=("quarantine_no_refunds",),
    quarantine="quarantine_no_refunds",
    quarantines_items=True,
)
WITH_NO_REFUNDS = (STAGES[0], NO_REFUNDS, *STAGES[1:])


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    demo_feed(tmp_path, DAY, 1, items_per_day=150, seed=5)
    return tmp_path


def day_run(root: Path, stages: tuple[Stage, ...], run_id: str) -> DayRun:
    contract = shipped_contract("demo_reviews", DAY)
    return DayRun(contract=contract, day=DAY, root=root / run_id, run_id=run_id, stages=stages)


def test_an_added_quarantining_stage_is_conserved_and_counted(feed: Path) -> None:
    for run_id in ("plain", "no_refunds"):
        shutil.copytree(feed / "landing", feed / run_id / "landing")
    plain = run_day(day_run(feed, STAGES, "plain"))
    run = day_run(feed, WITH_NO_REFUNDS, "no_refunds")
    manifest = run_day(run)

    # What the new stage should have removed, read independently from the plain run's output.
    published = pd.concat(
        pd.read_parquet(feed / "plain" / "curated" / "demo_reviews" / DAY / f"{s}.parquet")
        for s in F.SPLITS
    )
    mentioning = published[published[F.TEXT].str.contains(MARKER, case=False, regex=False)]
    assert len(mentioning) > 0, "the feed has no item that mentions the marker"

    counts = manifest["counts"]["quarantined"]
    assert counts["by_stage"]["no_refunds"] >= mentioning[F.N_SOURCE_ROWS].sum()
    assert counts["by_reason"]["text: no_refunds"] == counts["by_stage"]["no_refunds"]
    assert counts["by_kind"]["policy"] >= counts["by_stage"]["no_refunds"]
    assert {
        "stage": "no_refunds",
        "kind": "policy",
        "check": "no_refunds",
        "column": "text",
        "rows": counts["by_stage"]["no_refunds"],
    } in counts["reasons"]
    assert manifest["conservation"]["holds"]
    assert manifest["conservation"]["rows_in"] == plain["conservation"]["rows_in"]
    kept = pd.concat(
        pd.read_parquet(feed / "no_refunds" / "curated" / "demo_reviews" / DAY / f"{s}.parquet")
        for s in F.SPLITS
    )
    assert not kept[F.TEXT].str.contains(MARKER, case=False, regex=False).any()
    quarantine = pd.read_parquet(
        feed / "no_refunds" / "curated" / "demo_reviews" / DAY / "quarantine.parquet"
    )
    assert set(mentioning[F.ITEM_ID]) <= set(quarantine[F.ITEM_ID])
    refused = quarantine[quarantine[F.STAGE] == "no_refunds"]
    assert set(refused[F.REASONS]) == {f"text: no_refunds: mentions {MARKER}"}
    assert [list(causes) for causes in refused[F.CAUSES]] == [[refusal_record()]] * len(refused)


def test_a_retried_stage_quarantines_the_same_rows(feed: Path) -> None:
    run = day_run(feed, WITH_NO_REFUNDS, "retry")
    shutil.copytree(feed / "landing", feed / "retry" / "landing")
    stage_named("ingest")(run)
    first = NO_REFUNDS(run)
    again = NO_REFUNDS(run)
    assert first == again and first["quarantined_items"] > 0
    assert len(pipeline.kept_items(run, "privacy")) == first["items"] - first["quarantined_items"]


def test_the_dag_gets_the_added_stage_as_a_task_in_order() -> None:
    from governance_airflow.factory import build_governance_dag

    contract = shipped_contract("demo_reviews", DAY)
    dag = build_governance_dag(contract, WITH_NO_REFUNDS)
    assert dag.get_task("ingest_validate").downstream_task_ids == {"no_refunds"}
    assert dag.get_task("no_refunds").downstream_task_ids == {"scan_privacy"}

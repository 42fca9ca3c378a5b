"""Every file a night and a snapshot write lies in a folder the layout names, and the layout is
the tree its docstring draws."""

from __future__ import annotations

import re
from pathlib import Path

from governance import layout
from governance.layout import DatasetLayout, landing_root, run_slug, task_failures
from governance.pipeline import DayRun, run_day
from governance.snapshot import build_snapshot
from tests.contracts import shipped_contract
from tests.feeds import demo_feed

DAYS = ["2026-06-01", "2026-06-02"]


def drawn_tree() -> list[str]:
    """The ``<root>/...`` lines of the module docstring, placeholders as written."""
    return re.findall(r"^\s+(<root>/\S+)", layout.__doc__ or "", re.M)


def test_the_docstring_draws_the_folders_the_layout_makes() -> None:
    where = DatasetLayout(Path("<root>"), "<dataset>")
    made = [
        f"{where.landing('<day>')}/",
        f"{where.work('<day>', 'RUN')}/".replace("RUN", "<run>"),
        f"{where.version('<day>')}/",
        f"{where.unpublished('<day>')}/",
        f"{where.withdrawn}/",
        f"{where.ledger}/",
        str(where.ledger_lock),
        f"{task_failures(Path('<root>'))}/",
        f"{where.snapshot('<version>')}/",
        f"{where.checkpoints('RUN', 7)}/".replace("RUN", "<run>").replace("07", "NN"),
    ]
    assert drawn_tree() == made


def test_a_run_id_becomes_one_safe_folder_name() -> None:
    slug = run_slug("manual__2026-12-04T20:46:24.060392+00:00")
    assert slug == "manual__2026-12-04T20_46_24.060392_00_00"
    assert run_slug("../../etc/passwd") == ".._.._etc_passwd"
    assert "/" not in run_slug("a/b") and len(run_slug("x" * 500)) == 120


def test_two_datasets_share_no_folder(tmp_path: Path) -> None:
    one, two = DatasetLayout(tmp_path, "one"), DatasetLayout(tmp_path, "two")
    assert one.curated != two.curated and one.ledger != two.ledger
    assert one.landing("2026-01-01").parent.parent == landing_root(tmp_path)


def test_every_file_of_a_night_and_a_snapshot_lies_where_the_layout_says(tmp_path: Path) -> None:
    demo_feed(tmp_path, DAYS[0], len(DAYS), items_per_day=150, seed=5)
    contract = shipped_contract("demo_reviews", DAYS[0])
    for day in DAYS:
        run_day(DayRun(contract=contract, day=day, root=tmp_path, run_id="night:1+x"))
    build_snapshot(tmp_path, "demo_reviews", DAYS[-1])
    where = DatasetLayout(tmp_path, "demo_reviews")
    folders = [
        *(where.landing(day) for day in DAYS),
        *(where.work(day, "night:1+x") for day in DAYS),
        *(where.version(day) for day in DAYS),
        *(where.unpublished(day) for day in DAYS),
        where.withdrawn,
        where.ledger,
        where.ledger_lock,
        where.snapshot(DAYS[-1]),
        tmp_path / "truth",  # the demo generator's answers, outside the layout by design
    ]
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > 20
    stray = [p for p in written if not any(p.is_relative_to(folder) for folder in folders)]
    assert stray == []
    assert any(p.is_relative_to(where.ledger) for p in written)
    assert any(p.is_relative_to(where.snapshot(DAYS[-1])) for p in written)

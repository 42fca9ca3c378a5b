"""The privacy scan through Airflow (dag.test): personal data injected into the demo feed is
found with known precision and recall, and no value the contract masks or quarantines reaches
a published table, the report, the review queue, the MLflow artifacts or the task logs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from governance.demo.pii import InjectedValue, inject_pii, precision_recall
from governance.frames import SPLITS
from governance.publish import read_manifest
from tests.conftest import private_mlflow
from tests.contracts import shipped_contract
from tests.feeds import demo_feed
from tests.integration.helpers import run_days, version

pytestmark = pytest.mark.airflow

DAY = "2026-05-01"
DATASET = "demo_reviews"
# A record refused at ingest (not JSON) whose preview would show a card number and an address.
REFUSED_LINE = '{"item_id": "broken", "text": "card 4111 1111 1111 1111 mail x.y@example.com"'
REFUSED_VALUES = ("4111 1111 1111 1111", "x.y@example.com")


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path):
    """One demo day with 4% of its items carrying one injected value, run through Airflow,
    with the task logs captured."""
    root = tmp_path_factory.mktemp("privacy")
    demo_feed(root, DAY, 1, items_per_day=300, seed=11)
    landing = root / "landing" / DATASET / DAY
    injected = inject_pii(landing, root / "truth", DATASET, rate=0.04, seed=2)
    with (landing / "export-001.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(REFUSED_LINE + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_DATA_ROOT", str(root))
        with capture_logs() as logs:
            run_days(DATASET, [DAY])
    return root, injected, logs.getvalue()


class capture_logs:
    """Everything Airflow's loggers and the process write while the DAG runs."""

    def __enter__(self):
        import contextlib
        import io
        import logging

        self._buffer = io.StringIO()
        self._handler = logging.StreamHandler(self._buffer)
        logging.getLogger().addHandler(self._handler)
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._buffer))
        self._stack.enter_context(contextlib.redirect_stderr(self._buffer))
        return self._buffer

    def __exit__(self, *exc: object) -> None:
        import logging

        self._stack.close()
        logging.getLogger().removeHandler(self._handler)


def scanned_items(folder: Path) -> set[str]:
    """Items that reached the privacy stage: published, dropped as duplicates, or quarantined
    by a stage after ingest."""
    ids = set()
    for split in SPLITS:
        ids |= set(pd.read_parquet(folder / f"{split}.parquet")["item_id"])
    ids |= set(pd.read_parquet(folder / "duplicates.parquet")["item_id"])
    quarantine = pd.read_parquet(folder / "quarantine.parquet")
    return ids | set(quarantine.loc[quarantine["stage"] != "ingest", "item_id"].dropna())


def hidden_values(injected: list[InjectedValue]) -> list[str]:
    """The values the demo contract masks or quarantines (it reports none)."""
    contract = shipped_contract(DATASET)
    policy = contract.privacy.policy()
    assert all(policy[v.entity] in ("mask", "quarantine") for v in injected)
    return [v.value for v in injected] + list(REFUSED_VALUES)


def leaks(folder: Path, values: list[str]) -> list[str]:
    """Every file under ``folder`` that holds one of ``values``: parquet tables cell by cell,
    any other file as text."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            text = "\n".join(map(str, table.to_numpy().ravel()))
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{path.relative_to(folder)}: {value}" for value in values if value in text]
    return found


def test_injected_personal_data_is_found_with_known_precision_and_recall(night) -> None:
    root, injected, _ = night
    folder = version(root, DATASET, DAY)
    findings = pd.read_parquet(folder / "pii_findings.parquet")
    scores = precision_recall(
        injected,
        set(zip(findings["item_id"], findings["entity"], strict=True)),
        scanned_items(folder),
    )
    assert scores["injected"] == 12  # the README's figure: one value each in 4% of items
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.95, scores
    manifest = read_manifest(folder)
    privacy = manifest["privacy"]
    assert privacy["items_with_pii"] == len(set(findings["item_id"]))
    assert sum(privacy["entities"].values()) == len(findings)
    assert privacy["quarantine_previews"] == {"credit_card": 1, "email": 1}
    assert manifest["gate"]["status"] == "passed"
    report = (folder / "report.html").read_text(encoding="utf-8")
    shown = f"{privacy['items_with_pii']} of {privacy['items']} items"
    assert "Personal data and secrets" in report and shown in report
    check = next(c for c in manifest["gate"]["checks"] if c["name"] == "max_pii_rate")
    assert check["observed"] == pytest.approx(privacy["pii_rate"]) and check["passed"]


def test_items_holding_quarantined_entities_are_quarantined_with_the_reason(night) -> None:
    root, injected, _ = night
    folder = version(root, DATASET, DAY)
    quarantined = pd.read_parquet(folder / "quarantine.parquet")
    by_privacy = quarantined[quarantined["stage"] == "privacy"]
    held = {v.item_id: v.entity for v in injected if v.entity in ("credit_card", "iban", "secret")}
    published = set().union(
        *(set(pd.read_parquet(folder / f"{s}.parquet")["item_id"]) for s in SPLITS)
    )
    reached = scanned_items(folder)
    expected = {item for item in held if item in reached}
    assert expected and set(by_privacy["item_id"]) == expected
    assert not expected & published
    for item, reasons in zip(by_privacy["item_id"], by_privacy["reasons"], strict=True):
        assert reasons == f"text: holds {held[item]}: privacy.{held[item]}: quarantine"
    assert "<CREDIT_CARD>" in " ".join(quarantined["raw"].astype(str))
    assert read_manifest(folder)["conservation"]["holds"]


def test_masked_values_reach_no_table_report_queue_log_or_mlflow_artifact(night) -> None:
    from governance import tracking as T
    from governance.snapshot import build_snapshot
    from governance.tracking import run_inputs

    root, injected, logs = night
    values = hidden_values(injected)
    texts = " ".join(
        pd.concat(pd.read_parquet(version(root, DATASET, DAY) / f"{s}.parquet") for s in SPLITS)[
            "text"
        ]
    )
    assert "<EMAIL>" in texts and "<PHONE>" in texts  # masked items stay in the splits
    assert leaks(root / "curated", values) == []
    assert (version(root, DATASET, DAY) / "review_queue.csv").is_file()
    assert not (root / "work").exists() or leaks(root / "work", values) == []
    assert "scan_privacy" in logs and [v for v in values if v in logs] == []
    with private_mlflow(root / "mlflow") as base, pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVERNANCE_DATA_ROOT", str(root))  # the night's data, MLflow's store
        client = T.connect()
        run_id = client.create_run(client.create_experiment("privacy")).info.run_id
        snapshot = build_snapshot(root, DATASET, DAY)
        run_inputs.log_dataset_inputs(client, run_id, snapshot)
        logged = run_inputs.log_version_artifacts(client, run_id, snapshot)
        assert any(path.endswith(".csv") for path in logged)
        assert leaks(base / "artifacts", values) == []
        assert leaks(base / "store", values) == []
    assert json.loads((root / "truth" / DATASET / f"{DAY}.pii.json").read_text())

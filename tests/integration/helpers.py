"""Shared steps of the end-to-end tests: stage landing days, run the DAG, read what it published."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pandas as pd

from governance.contracts import Contract
from governance.frames import SPLITS
from governance.history import Ledger, days_between
from governance.publish import read_manifest
from tests.contracts import shipped_contract


def stage_lines(
    lines: list[bytes], header: bytes | None, landing: Path, days: list[str], name: str
) -> dict[str, list[int]]:
    """Spread raw lines over consecutive day folders; returns each day's global line numbers."""
    per_day = -(-len(lines) // len(days))
    placed: dict[str, list[int]] = {}
    for k, day in enumerate(days):
        chunk = lines[k * per_day : (k + 1) * per_day]
        folder = landing / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((header or b"") + b"".join(chunk))
        placed[day] = list(range(k * per_day, k * per_day + len(chunk)))
    return placed


def quick_contract(dataset: str, start: str) -> Contract:
    """The shipped contract starting at ``start``, polling the history every second and giving
    up after two minutes (a test that forgot to settle a day fails instead of waiting a day)."""
    contract = shipped_contract(dataset, start)
    history = contract.history.model_copy(
        update={"poke_interval_seconds": 1.0, "timeout_hours": 2 / 60}
    )
    return contract.model_copy(update={"history": history})


def skip_days(root: Path, dataset: str, first: str, end: str) -> None:
    """Settle the days from ``first`` up to ``end`` as skipped (a test's gap between days)."""
    ledger = Ledger(root, dataset)
    for day in days_between(first, end):
        if ledger.get(day) is None:
            ledger.skip(day, "no partition in this test")


def run_days(
    dataset: str, days: list[str], expect: str = "success", start: str | None = None, **conf
) -> list:
    """Run the governance DAG through Airflow (dag.test) once per day; each run must end in the
    ``expect``ed state. The dataset starts at ``start`` (default: the first day run)."""
    from governance_airflow.factory import build_governance_dag, without_deadlines

    dag = without_deadlines(build_governance_dag(quick_contract(dataset, start or days[0])))
    runs = []
    for day in days:
        logical = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        dag_run = dag.test(logical_date=logical, run_conf=conf or None)
        assert expect in str(dag_run.state), f"{dataset} {day}: {dag_run.state}"
        runs.append(dag_run)
    return runs


def task_states(dag_run) -> dict[str, tuple[str, int]]:
    """Each task's final state and try number in one DAG run, from the metadata database."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
        )
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in rows}


def asset_events(asset_name: str) -> list[dict]:
    """The extras of every event recorded for an asset, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == asset_name)
            .order_by(AssetEvent.id)
        )
        return [dict(event.extra or {}) for event in events]


def version(root: Path, dataset: str, day: str) -> Path:
    return root / "curated" / dataset / day


def manifests(root: Path, dataset: str, days: list[str]) -> list[dict]:
    return [read_manifest(version(root, dataset, d)) for d in days]


def read_table(root: Path, dataset: str, days: list[str], table: str) -> pd.DataFrame:
    parts = []
    for day in days:
        frame = pd.read_parquet(version(root, dataset, day) / f"{table}.parquet")
        parts.append(frame.assign(version=day))
    return pd.concat(parts, ignore_index=True)


def published_items(root: Path, dataset: str, days: list[str]) -> pd.DataFrame:
    return pd.concat([read_table(root, dataset, days, s) for s in SPLITS], ignore_index=True)


def data_file_digests(version_dir: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version_dir.glob("*.parquet"))
    }


def word_set(text: str) -> frozenset[str]:
    """An independent tokenisation for leakage checks (not the pipeline's own)."""
    return frozenset(re.findall(r"\w+", str(text).casefold()))


def cross_split_near_pairs(items: pd.DataFrame, threshold: float) -> list[tuple[str, str]]:
    """Pairs of published items in different splits whose word sets are near-identical.

    Candidates come from datasketch's MinHash LSH (the reference implementation), each verified
    with the exact Jaccard similarity.
    """
    from datasketch import MinHash, MinHashLSH

    sets = [word_set(t) for t in items["text"]]
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    hashes = []
    for k, words in enumerate(sets):
        m = MinHash(num_perm=128)
        for w in words:
            m.update(w.encode())
        hashes.append(m)
        lsh.insert(str(k), m)
    splits = items["split"].tolist()
    ids = items["item_id"].tolist()
    pairs = []
    for k, m in enumerate(hashes):
        for other in map(int, lsh.query(m)):
            if other <= k or splits[other] == splits[k]:
                continue
            a, b = sets[k], sets[other]
            if a and b and len(a & b) / len(a | b) >= threshold:
                pairs.append((ids[k], ids[other]))
    return pairs

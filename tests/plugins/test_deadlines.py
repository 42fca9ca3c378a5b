"""A run past its deadline is reported: the miss is logged, counted in statsd and notified, along
the path Airflow takes (trigger -> Deadline row -> scheduler check -> triggerer callback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk import AsyncCallback, DeadlineReference

from governance.contracts import contracts_dir, load_contract
from governance_airflow.deadlines import DeadlineMiss, deadline_for, on_deadline_miss

NOTIFIED: list[DeadlineMiss] = []


def record_miss(miss: DeadlineMiss) -> None:
    """The notifier the tests name in GOVERNANCE_DEADLINE_NOTIFIER."""
    NOTIFIED.append(miss)


def broken_notifier(miss: DeadlineMiss) -> None:
    raise RuntimeError("the chat service is down")


@pytest.fixture
def statsd_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A real UDP socket on a free loopback port, where the callback's statsd packets land."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    monkeypatch.setenv("GOVERNANCE_STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("GOVERNANCE_STATSD_PORT", str(sock.getsockname()[1]))
    monkeypatch.delenv("GOVERNANCE_STATSD_PREFIX", raising=False)
    NOTIFIED.clear()
    yield sock
    sock.close()


def test_each_dag_kind_gets_its_allowance_from_the_queue_time() -> None:
    contract = load_contract(contracts_dir() / "sms_spam.yaml")
    for kind, hours in (("governance", 2), ("finetune", 6)):
        alert = deadline_for(contract, kind)
        assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
        assert alert.interval == dt.timedelta(hours=hours)
        assert isinstance(alert.callback, AsyncCallback)
        assert alert.callback.path == "governance_airflow.deadlines.on_deadline_miss"
        assert alert.callback.kwargs == {"dataset": "sms_spam", "kind": kind}
    with pytest.raises(ValueError, match="unknown DAG kind 'nightly'"):
        deadline_for(contract, "nightly")


def test_a_failing_notifier_is_logged_and_the_miss_still_counted(
    statsd_socket: socket.socket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOVERNANCE_DEADLINE_NOTIFIER", f"{__name__}.broken_notifier")
    context = {"dag_run": {"dag_id": "govern_demo_reviews", "dag_run_id": "r1"}}
    summary = asyncio.run(on_deadline_miss("demo_reviews", "governance", context=context))
    assert summary.startswith("governance run r1 of govern_demo_reviews (demo_reviews) missed")
    assert statsd_socket.recv(512) == b"governance.demo_reviews.deadline_miss:1|c"
    assert "the chat service is down" in caplog.text
    assert "broken_notifier" in caplog.text


def test_a_bad_statsd_setting_is_logged_and_the_notifier_still_called(
    statsd_socket: socket.socket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOVERNANCE_STATSD_PORT", "eighty")
    monkeypatch.setenv("GOVERNANCE_DEADLINE_NOTIFIER", f"{__name__}.record_miss")
    asyncio.run(on_deadline_miss("sms_spam", "finetune"))
    assert "Could not count the missed deadline of sms_spam" in caplog.text
    assert [(m.dataset, m.kind) for m in NOTIFIED] == [("sms_spam", "finetune")]


DEADLINE_DAGS = """
import datetime as dt

from airflow.sdk import DAG, task

from governance.contracts import contracts_dir, load_contract
from governance_airflow.deadlines import deadline_alert, deadline_for
from governance_airflow.factory import task_defaults

contract = load_contract(contracts_dir() / "sms_spam.yaml")


def probe(dag_id, deadline):
    with DAG(
        dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        default_args=task_defaults("qa"),
        deadline=deadline,
    ) as dag:

        @task
        def work():
            return 1

        work()
    return dag


late = probe("deadline_probe_late", deadline_alert(contract.name, "governance", dt.timedelta(0)))
on_time = probe("deadline_probe_on_time", deadline_for(contract, "governance"))
"""


def handle_missed_deadlines(session) -> list:
    """The scheduler loop's deadline check (SchedulerJobRunner._run_scheduler_loop)."""
    from airflow._shared.timezones import timezone
    from airflow.models.deadline import Deadline
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    query = (
        select(Deadline)
        .where(Deadline.deadline_time < timezone.utcnow())
        .where(~Deadline.missed)
        .options(selectinload(Deadline.callback), selectinload(Deadline.dagrun))
    )
    missed = list(session.scalars(query))
    for deadline in missed:
        deadline.handle_miss(session)
    return missed


async def run_trigger(trigger) -> list:
    return [event async for event in trigger.run()]


def fire_queued_callbacks(trigger_ids: list[int]) -> None:
    """What the triggerer does with each queued callback trigger: run it, submit its events."""
    from airflow.models.trigger import Trigger
    from airflow.sdk.module_loading import import_string
    from airflow.utils.session import create_session

    with create_session() as session:
        queued = session.query(Trigger).filter(Trigger.id.in_(trigger_ids))
        rows = {t.id: (t.classpath, t.kwargs) for t in queued}
    for trigger_id, (classpath, kwargs) in rows.items():
        events = asyncio.run(run_trigger(import_string(classpath)(**kwargs)))
        with create_session() as session:
            for event in events:
                Trigger.submit_event(trigger_id, event, session=session)


@pytest.mark.airflow
def test_a_run_past_its_deadline_fires_the_callback(
    airflow_db: Path,
    tmp_path: Path,
    statsd_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from airflow.utils.state import CallbackState
    from airflow.utils.types import DagRunTriggeredByType

    monkeypatch.setenv("GOVERNANCE_DEADLINE_NOTIFIER", f"{__name__}.record_miss")
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "deadline_probes.py").write_text(DEADLINE_DAGS)
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)

    runs = {}
    with create_session() as session:
        for dag_id in ("deadline_probe_late", "deadline_probe_on_time"):
            run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.TEST, session=session)
            runs[dag_id] = (run.id, run.run_id, run.queued_at)
        session.flush()
        created = {d.dagrun.dag_id: d.deadline_time for d in session.query(Deadline)}
        missed = handle_missed_deadlines(session)
        trigger_ids = [d.callback.trigger_id for d in missed]
        missed_ids = {d.dagrun.dag_id for d in missed}

    late_id, late_run, late_queued = runs["deadline_probe_late"]
    assert created["deadline_probe_late"] == late_queued
    on_time_queued = runs["deadline_probe_on_time"][2]
    assert created["deadline_probe_on_time"] == on_time_queued + dt.timedelta(hours=2)
    assert missed_ids == {"deadline_probe_late"}

    fire_queued_callbacks(trigger_ids)

    assert statsd_socket.recv(512) == b"governance.sms_spam.deadline_miss:1|c"
    assert (
        f"Deadline missed: governance run {late_run} of deadline_probe_late (sms_spam)"
        in caplog.text
    )
    (miss,) = NOTIFIED
    assert (miss.dataset, miss.kind, miss.dag_id, miss.run_id) == (
        "sms_spam",
        "governance",
        "deadline_probe_late",
        late_run,
    )
    assert dt.datetime.fromisoformat(miss.deadline_time) == late_queued
    with create_session() as session:
        (deadline,) = session.query(Deadline).filter(Deadline.dagrun_id == late_id)
        assert deadline.missed
        assert deadline.callback.state == CallbackState.SUCCESS
        assert deadline.callback.output.startswith(f"governance run {late_run}")

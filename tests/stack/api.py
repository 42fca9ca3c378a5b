"""The Airflow REST API as an operator's script uses it: a token from the simple auth manager,
then /api/v2 calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

RUN_ENDED = {"success", "failed"}
TASK_ENDED = RUN_ENDED | {"upstream_failed", "skipped", "removed"}


class AirflowApi:
    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        answer = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": user, "password": password},
            timeout=30,
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:2000]}")
        return answer.json() if answer.content else None

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def backfill(self, dag_id: str, first: str, last: str, max_active_runs: int) -> dict:
        body = {
            "dag_id": dag_id,
            "from_date": f"{first}T00:00:00Z",
            "to_date": f"{last}T00:00:00Z",
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "none",
            "run_backwards": False,
            "dag_run_conf": {},
        }
        return self.call("POST", "/backfills", json=body)

    def runs(self, dag_id: str) -> list[dict]:
        found = self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
        return found["dag_runs"]

    def queued_asset_events(self, dag_id: str) -> int:
        """Asset events queued for ``dag_id`` that the scheduler has not yet made a run of."""
        return int(self.call("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.call("GET", path, params={"limit": 100})["task_instances"]

    def wait_for(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float,
        progress: Callable[[str], None] = print,
        every: float = 5,
    ) -> Any:
        """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
        started = time.monotonic()
        last = 0.0
        while True:
            found = check()
            if found:
                return found
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise AssertionError(f"{what}: not after {timeout:.0f} s")
            if elapsed - last >= 60:
                progress(f"  still waiting for {what} ({elapsed:.0f} s)")
                last = elapsed
            time.sleep(every)

    def finished_runs(self, dag_id: str, select: Callable[[dict], bool], count: int) -> Any:
        """The selected runs once ``count`` of them are terminal, else None."""
        runs = [run for run in self.runs(dag_id) if select(run)]
        done = [run for run in runs if run["state"] in RUN_ENDED]
        return done if len(done) >= count else None

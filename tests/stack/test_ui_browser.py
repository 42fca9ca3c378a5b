"""The stack as a person sees it in a browser: the Airflow login, the trigger form's refusals, a
dry run's durations in the grid, the champion and its lineage in the MLflow UI, and the
governance report. Runs after test_topology.py, whose nights and fine-tune it looks at."""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.stack.browser import (
    VIEWPORT,
    chromium,
    form_field,
    log_in,
    login_state,
    open_trigger_form,
    save_screenshot,
    screenshotted,
    seconds,
    submit,
    switch_on,
    table_rows,
    write_conf,
)
from tests.stack.conftest import DATASET, FINETUNE, GOVERN, RunningStack

pytestmark = pytest.mark.stack

MODEL = f"{DATASET}-classifier"
# Settled by the backfill; a dry run of it publishes nothing, so it can run again at any time.
DRY_RUN_DAY = "2026-11-01"
# The second day has a previous version, so its report has the drift plots too.
REPORT_DAY = "2026-11-02"
REPORT_PLOTS = (
    "where the source rows went",
    "quarantined rows by reason",
    "items per class and split",
    "pairwise Cohen's kappa",
    "class share current vs previous",
    "text length current vs previous",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def airflow_login(browser: Browser, running_stack: RunningStack) -> dict[str, Any]:
    """One login through the form, shared by the tests that start logged in."""
    return login_state(browser, running_stack)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page logged in nowhere; its screenshot is kept."""
    yield from screenshotted(browser.new_context(viewport=VIEWPORT), request)


@pytest.fixture
def airflow_page(
    browser: Browser, airflow_login: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page logged in to Airflow as the admin; its screenshot is kept."""
    context = browser.new_context(viewport=VIEWPORT, storage_state=airflow_login)
    yield from screenshotted(context, request)


def airflow_url(stack: RunningStack) -> str:
    return stack.stack.settings.airflow_url


def manual_runs(stack: RunningStack) -> dict[str, dict]:
    return {run["dag_run_id"]: run for run in stack.api.runs(GOVERN) if run["run_type"] == "manual"}


def run_page_url(stack: RunningStack, run_id: str) -> str:
    return f"{airflow_url(stack)}/dags/{GOVERN}/runs/{urllib.parse.quote(run_id, safe='')}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- login


def test_the_admin_logs_in_through_the_form_and_lands_on_the_home_page(
    page: Page, running_stack: RunningStack
) -> None:
    log_in(page, running_stack)
    assert page.url == f"{airflow_url(running_stack)}/"
    expect(page).to_have_title("Home - Airflow")
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()


def test_a_wrong_password_is_refused_on_the_login_form(
    page: Page, running_stack: RunningStack
) -> None:
    page.goto(f"{airflow_url(running_stack)}/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Invalid credentials")).to_be_visible()
    assert "/auth/login" in page.url


# ---------------------------------------------------------------- the trigger form refuses


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"day": "2026-13-45"}, "Invalid input for param day: '2026-13-45' is not a 'date'"),
        ({"day": "yesterday"}, "Invalid input for param day: 'yesterday' is not a 'date'"),
        (
            {"max_quarantine_rate": -0.5},
            "Invalid input for param max_quarantine_rate: -0.5 is less than the minimum of 0",
        ),
    ],
    ids=["day-2026-13-45", "day-yesterday", "max_quarantine_rate--0.5"],
)
def test_the_trigger_form_refuses_a_bad_configuration(
    airflow_page: Page, running_stack: RunningStack, conf: dict[str, Any], message: str
) -> None:
    # The date field is a date picker (it cannot hold "yesterday") and a rate field clamps what
    # it is given: a bad value reaches the form through its Configuration JSON.
    before = manual_runs(running_stack)
    dialog = open_trigger_form(airflow_page, airflow_url(running_stack), GOVERN)
    write_conf(dialog, conf)
    submit(dialog)
    shows(dialog, message)
    assert_no_run_created(running_stack, before, conf)


def test_the_trigger_form_refuses_a_threshold_typed_out_of_range(
    airflow_page: Page, running_stack: RunningStack
) -> None:
    before = manual_runs(running_stack)
    dialog = open_trigger_form(airflow_page, airflow_url(running_stack), GOVERN)
    field = form_field(dialog, "Near-duplicate Jaccard threshold")
    field.fill("-0.5")
    field.press("Tab")
    expect(field).to_have_value("-0.5")
    submit(dialog)
    shows(
        dialog,
        "Invalid input for param near_threshold: -0.5 is less than or equal to the minimum of 0",
    )
    assert_no_run_created(running_stack, before, {"near_threshold": -0.5})


def test_a_rate_field_never_keeps_a_negative_rate(
    airflow_page: Page, running_stack: RunningStack
) -> None:
    # A field with a minimum clamps on leaving it, so a typed -0.5 can never reach a run as such.
    dialog = open_trigger_form(airflow_page, airflow_url(running_stack), GOVERN)
    field = form_field(dialog, "Max quarantine rate")
    field.fill("-0.5")
    field.press("Tab")
    expect(field).to_have_value("0")


def shows(dialog: Locator, message: str) -> None:
    """The message is on the dialog, scrolled to where a person (and the screenshot) sees it."""
    shown = dialog.get_by_text(message)
    expect(shown).to_be_visible()
    shown.scroll_into_view_if_needed()


def assert_no_run_created(stack: RunningStack, before: dict[str, dict], conf: dict) -> None:
    after = manual_runs(stack)
    assert sorted(after) == sorted(before), f"a run was created: {sorted(set(after) - set(before))}"
    for run in stack.api.runs(GOVERN):
        for key, value in conf.items():
            assert (run.get("conf") or {}).get(key) != value, run["dag_run_id"]


# ---------------------------------------------------------------- a dry run from the form


@dataclass
class DryRun:
    run: dict
    task_instances: list[dict]
    curated_manifest_before: str


@pytest.fixture(scope="module")
def dry_run(
    browser: Browser, airflow_login: dict[str, Any], backfilled: tuple[RunningStack, list]
) -> DryRun:
    """A dry run of a settled day, triggered from the trigger form, finished."""
    stack, _ = backfilled
    curated = stack.data_root / "curated" / DATASET / DRY_RUN_DAY / "manifest.json"
    assert curated.exists(), f"{DRY_RUN_DAY} is not published"
    manifest_before = sha256(curated)
    context = browser.new_context(viewport=VIEWPORT, storage_state=airflow_login)
    try:
        page = context.new_page()
        dialog = open_trigger_form(page, airflow_url(stack), GOVERN)
        form_field(dialog, "Partition date").fill(DRY_RUN_DAY)
        switch_on(dialog, "Dry run")
        save_screenshot(page, "dry_run_trigger_form")
        with page.expect_response(
            lambda answer: answer.request.method == "POST" and answer.url.endswith("/dagRuns")
        ) as answered:
            submit(dialog)
        assert answered.value.status == 200, answered.value.text()
        run_id = answered.value.json()["dag_run_id"]
        # The form hands over to the new run's page.
        expect(page.get_by_role("heading", name=run_id)).to_be_visible()
        assert urllib.parse.unquote(page.url).endswith(f"/runs/{run_id}"), page.url
    finally:
        context.close()
    api = stack.api
    (run,) = api.wait_for(
        f"the dry run {run_id}",
        lambda: api.finished_runs(GOVERN, lambda found: found["dag_run_id"] == run_id, 1),
        timeout=10 * 60,
    )
    return DryRun(run, api.task_instances(GOVERN, run_id), manifest_before)


def test_a_dry_run_from_the_form_succeeds_and_publishes_nothing(
    airflow_page: Page, running_stack: RunningStack, dry_run: DryRun
) -> None:
    run = dry_run.run
    assert run["state"] == "success", run
    assert run["conf"]["day"] == DRY_RUN_DAY
    assert run["conf"]["dry_run"] is True
    states = {ti["task_id"]: ti["state"] for ti in dry_run.task_instances}
    assert states.pop("publish") == "skipped", "a dry run skips publishing"
    assert set(states.values()) == {"success"}, states
    root = running_stack.data_root
    curated = root / "curated" / DATASET / DRY_RUN_DAY / "manifest.json"
    assert sha256(curated) == dry_run.curated_manifest_before, "the dry run changed the version"
    assert (root / "unpublished" / DATASET / DRY_RUN_DAY / "report.html").exists()
    airflow_page.goto(run_page_url(running_stack, run["dag_run_id"]))
    header = airflow_page.get_by_role("heading", name=run["dag_run_id"])
    expect(header).to_be_visible()
    expect(airflow_page.get_by_text("Success").first).to_be_visible()


def test_the_run_page_shows_the_true_durations(
    airflow_page: Page, running_stack: RunningStack, dry_run: DryRun
) -> None:
    airflow_page.goto(run_page_url(running_stack, dry_run.run["dag_run_id"]))
    table = airflow_page.get_by_test_id("table-list")
    expect(table.locator("tbody tr")).to_have_count(len(dry_run.task_instances))
    stat = airflow_page.get_by_test_id("stat").filter(
        has=airflow_page.get_by_role("heading", name="Duration", exact=True)
    )
    shown = seconds(stat.inner_text())
    assert shown > 0
    assert shown == pytest.approx(dry_run.run["duration"], abs=0.002)
    shown_tasks = {row["Task ID"]: seconds(row["Duration"]) for row in table_rows(table)}
    expected = {ti["task_id"]: ti["duration"] for ti in dry_run.task_instances}
    assert sorted(shown_tasks) == sorted(expected)
    for task, duration in expected.items():
        assert shown_tasks[task] > 0, task
        assert shown_tasks[task] == pytest.approx(duration, abs=0.002), task


def test_the_grid_shows_each_task_duration(
    airflow_page: Page, running_stack: RunningStack, dry_run: DryRun
) -> None:
    run_id = dry_run.run["dag_run_id"]
    airflow_page.goto(run_page_url(running_stack, run_id))
    expect(airflow_page.get_by_test_id("table-list").locator("tbody tr").first).to_be_visible()
    for ti in dry_run.task_instances:
        cell = airflow_page.get_by_test_id(f"grid-{run_id}-{ti['task_id']}")
        tooltip = hover_for_tooltip(airflow_page, cell, f"Task ID: {ti['task_id']}")
        # The grid shows whole seconds.
        shown = seconds(tooltip.inner_text().split("Duration:")[1])
        assert abs(shown - ti["duration"]) < 1, (ti["task_id"], shown, ti["duration"])
        airflow_page.mouse.move(0, 0)
        expect(tooltip).to_be_hidden()


def hover_for_tooltip(page: Page, target: Locator, text: str, tries: int = 5) -> Locator:
    """The tooltip a hover over ``target`` opens; hovering again when the page re-rendered under
    the pointer before the tooltip opened."""
    tooltip = page.get_by_role("tooltip").filter(has_text=text)
    for _ in range(tries - 1):
        target.hover()
        try:
            expect(tooltip).to_contain_text("Duration:", timeout=5_000)
            return tooltip
        except AssertionError:
            page.mouse.move(0, 0)
    target.hover()
    expect(tooltip).to_contain_text("Duration:")
    return tooltip


def test_the_gantt_bars_are_as_long_as_the_tasks_took(
    airflow_page: Page, running_stack: RunningStack, dry_run: DryRun
) -> None:
    airflow_page.goto(run_page_url(running_stack, dry_run.run["dag_run_id"]))
    airflow_page.get_by_role("button", name="Show Gantt").click()
    durations = {ti["task_id"]: ti["duration"] for ti in dry_run.task_instances}
    widths = gantt_bar_widths(airflow_page, len(durations))
    assert sorted(widths) == sorted(durations)
    longest = max(durations, key=durations.__getitem__)
    pixels_per_second = widths[longest] / durations[longest]
    for task, duration in durations.items():
        assert widths[task] > 0, task
        expected = duration * pixels_per_second
        # Bars have a minimum width; only bars longer than it are to scale.
        if expected > 20:
            assert widths[task] == pytest.approx(expected, rel=0.1), (task, widths, durations)


def gantt_bar_widths(page: Page, count: int, timeout: float = 30) -> dict[str, float]:
    """The width in pixels of each task's bar in the Gantt chart, read in one pass in the page
    (the chart re-renders while other runs are active, so a count taken first may not hold when
    the bars are measured); read again until ``count`` bars are there. Its rows carry a task id
    but, unlike the grid's cells and task names, no run or node id."""
    selector = (
        "div[data-task-id]:not([data-run-id]):not([data-node-id])"
        " [data-scope=tooltip][data-part=trigger]"
    )
    expect(page.locator(selector)).to_have_count(count)
    deadline = time.monotonic() + timeout
    while True:
        measured = page.evaluate(
            """selector => Array.from(document.querySelectorAll(selector), bar => [
                bar.closest("[data-task-id]").dataset.taskId, bar.getBoundingClientRect().width
            ])""",
            selector,
        )
        if len(measured) == count or time.monotonic() > deadline:
            return dict(measured)
        time.sleep(0.5)


# ---------------------------------------------------------------- MLflow


def test_the_model_page_shows_the_champion_and_its_run_shows_the_lineage(
    page: Page, running_stack: RunningStack
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(
        tracking_uri=running_stack.mlflow_url, registry_uri=running_stack.mlflow_url
    )
    try:
        champion = client.get_model_version_by_alias(MODEL, "champion")
    except MlflowException:
        pytest.fail(f"no champion of {MODEL}: test_topology.py's fine-tune test makes one")
    run = client.get_run(champion.run_id)

    page.goto(f"{running_stack.mlflow_url}/#/models/{MODEL}")
    version = page.get_by_role("link", name=f"Version {champion.version}", exact=True)
    row = page.get_by_role("row").filter(has=version)
    expect(row).to_contain_text("@ champion")
    version.click()
    expect(page.get_by_text("Aliases")).to_be_visible()
    expect(page.get_by_text("@ champion")).to_be_visible()
    page.get_by_role("link", name=run.info.run_name).click()

    tags = run.data.tags
    assert tags["airflow.dag_id"] == FINETUNE
    for key in ("dataset.version", "airflow.dag_id", "airflow.run_id", "dataset.manifest_sha256"):
        tag = page.locator(f'[role=status][title="{key}"]')
        expect(tag).to_contain_text(f"{key}: {tags[key]}")
    inputs = sorted((i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs)
    assert [name for name, _ in inputs] == sorted(
        f"{DATASET}-{split}@{tags['dataset.version']}" for split in ("train", "val", "test")
    )
    shown = page.get_by_text(f"{DATASET}-train@{tags['dataset.version']}")
    expect(shown.first).to_be_visible()
    # The first input is listed, the others behind a "+N" button.
    page.get_by_role("button").filter(has_text=f"+{len(inputs) - 1}").click()
    for name, digest in inputs:
        expect(page.get_by_text(f"{name} ({digest})").first).to_be_visible()


# ---------------------------------------------------------------- the governance report


def test_the_governance_report_opens_with_its_plots(
    page: Page, backfilled: tuple[RunningStack, list]
) -> None:
    stack, _ = backfilled
    report = stack.data_root / "curated" / DATASET / REPORT_DAY / "report.html"
    assert report.exists(), f"no report for {REPORT_DAY}"
    page.goto(report.as_uri())
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Governance report: {DATASET} {REPORT_DAY}"
    )
    for alt in REPORT_PLOTS:
        expect(page.get_by_role("img", name=alt, exact=True)).to_be_visible()
    images = page.get_by_role("img")
    loaded = images.evaluate_all(
        "images => images.map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert any(alt.startswith("confusion matrix of ann_") for alt, *_ in loaded), loaded
    for alt, complete, width, height in loaded:
        assert complete and width > 0 and height > 0, (alt, width, height)
    page.get_by_role("link", name="Drift against the previous version").click()
    expect(page.get_by_role("img", name="class share current vs previous")).to_be_in_viewport()

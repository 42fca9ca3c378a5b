"""The browser of the stack tier: the machine's Chromium driven by Playwright (no browser is ever
downloaded), a fresh context per test, and a screenshot of every test's page under
``tests/stack/artifacts/<test>.png``, whether the test passed or failed."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from governance.stack import ADMIN_USER
from tests.stack.conftest import ARTIFACTS, RunningStack

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
# The stack shares two cores with its workers: pages take seconds, not milliseconds.
TIMEOUT_MS = 60_000
DURATION = re.compile(r"(\d+):(\d{2}):(\d{2})(?:\.(\d+(?:\.\d+)?))?")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """The machine's Chromium, headless; a missing one fails (``make test`` installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: make browser installs it")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def login_state(browser: Browser, stack: RunningStack) -> dict[str, Any]:
    """The cookies of one login through the Airflow login form."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, stack)
        return context.storage_state()
    finally:
        context.close()


def screenshotted(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page fixture's body: the context's page; once the test is over, passed or failed, what
    the page showed is kept as a screenshot named after the test."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        try:
            save_screenshot(page, request.node.name)
        finally:
            context.close()


def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.png"
    page.screenshot(path=str(path))
    return path


def log_in(page: Page, stack: RunningStack) -> None:
    """Sign in through the simple auth manager's form, as a person does from the home page."""
    password = stack.stack.variables()["AIRFLOW_ADMIN_PASSWORD"]
    page.goto(f"{stack.stack.settings.airflow_url}/")
    expect(page.get_by_role("heading", name="Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()


def open_trigger_form(page: Page, airflow_url: str, dag_id: str) -> Locator:
    """The DAG page's Trigger dialog."""
    page.goto(f"{airflow_url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name="Trigger Dag"))
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    return dialog


def form_field(dialog: Locator, title: str) -> Locator:
    """The input of a Run Parameters field, found by its title: the date field's label is not
    tied to its input (``for`` names another id), so labels alone do not find every field."""
    group = dialog.get_by_role("group").filter(has=dialog.page.get_by_text(title, exact=True))
    return group.locator("input")


def write_conf(dialog: Locator, conf: dict[str, Any]) -> None:
    """Replace the Configuration JSON under Advanced Options, as a person types it."""
    dialog.get_by_role("button", name="Advanced Options").click()
    editor = (
        dialog.get_by_role("group")
        .filter(has_text="Configuration JSON")
        .get_by_role("textbox", name="Editor content")
    )
    # The editor's text box is a zero-size element that takes the keys once focused.
    editor.focus()
    page = dialog.page
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    # insert_text types the whole text at once: the editor's auto-closing of brackets and quotes
    # would otherwise add characters of its own.
    page.keyboard.insert_text(json.dumps(conf))


def switch_on(dialog: Locator, title: str) -> None:
    """Turn a boolean field on by clicking its label (the switch's checkbox itself is hidden)."""
    dialog.get_by_text(re.compile(rf"^{re.escape(title)}\b")).first.click()
    expect(dialog.get_by_role("checkbox", name=title)).to_be_checked()


def submit(dialog: Locator) -> None:
    dialog.get_by_role("button", name="Trigger", exact=True).click()


def seconds(shown: str) -> float:
    """A duration as the Airflow UI shows it (``00:01:02.345`` or ``00:01:02``), in seconds.

    The UI of Airflow 3.3.2 formats the milliseconds with dayjs, which prints a millisecond count
    that floating point left just below an integer as is and unpadded: 1.013 s shows as
    ``00:00:01.12.99999999`` (fixed upstream in apache/airflow#66560). Such a field is read as the
    millisecond count it is, so the figure the page carries is still checked to the millisecond.
    """
    found = DURATION.search(shown)
    assert found, f"no duration in {shown!r}"
    hours, minutes, whole, fraction = found.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + int(whole)
    if not fraction:
        return float(total)
    if "." in fraction:  # the unpadded millisecond count described above
        return total + float(fraction) / 1000
    return total + int(fraction) / 10 ** len(fraction)


def table_rows(table: Locator) -> list[dict[str, str]]:
    """The rows of an Airflow table, each as column header -> cell text."""
    expect(table.locator("tbody tr").first).to_be_visible()
    headers = [text.strip() for text in table.locator("thead th").all_inner_texts()]
    rows = []
    for row in table.locator("tbody tr").all():
        cells = [text.strip() for text in row.locator("td").all_inner_texts()]
        rows.append(dict(zip(headers, cells, strict=False)))
    return rows

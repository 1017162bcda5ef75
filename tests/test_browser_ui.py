"""The officer's UI, driven in a real browser: headless Chromium (Debian's package, installed by
``scripts/ensure-browser.sh``) against the whole stack of ``dsrflow.stack.up``.

0. the officer logs in with the stack's credential (the API refuses callers without it);
1. an access request started from the deployment's Run → Custom run form completes;
2. an erasure request started the same way pauses, its run page shows the plan artifacts, the
   officer approves it with the run's Resume form and the run completes;
3. the deadline report's ``open-requests`` table is visible on the Artifacts page.

Every step leaves a screenshot in ``.artifacts/browser/`` (git-ignored) at the repository root;
a failed wait also leaves ``FAILED-<step>.png`` and ``.html`` there.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.support.browser import MISSING, have_chromium

if not have_chromium():
    pytest.skip(MISSING, allow_module_level=True)

from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC

from dsrflow import stack as officer_stack
from dsrflow.config import load_config
from tests.support.browser import (
    HEADING,
    SHOTS,
    clickable,
    form_property,
    ledger_entries,
    log_in,
    open_run_page,
    running_stack,
    shot,
    start_chromium,
    submit_resume_form,
    until,
    visible,
    wait_for_state,
)

SUBJECT = "kari.nordmann@example.com"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[officer_stack.Stack]:
    """The officer's stack on a free port; the client of this process talks to its API."""
    yield from running_stack(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(
    tmp_path_factory: pytest.TempPathFactory, stack: officer_stack.Stack
) -> Iterator[WebDriver]:
    if SHOTS.exists():
        shutil.rmtree(SHOTS)  # only this run's screenshots, none left over
    SHOTS.mkdir(parents=True)
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        log_in(driver, stack)
        yield driver
    finally:
        driver.quit()


# --- browser helpers (the shared ones are in tests/support/browser.py) -------------------------


def start_from_run_form(
    driver: WebDriver, ui_url: str, deployment: str, request_id: str, step: str
) -> str:
    """Deployments → the deployment → Run → Custom run → fill → Submit; the new run's id."""
    driver.get(f"{ui_url}/deployments")
    clickable(
        driver,
        f"//a[contains(@href,'/deployments/deployment/') and normalize-space()='{deployment}']",
        f"{step}-deployments",
    ).click()
    clickable(driver, "//button[normalize-space()='Run']", f"{step}-deployment").click()
    clickable(driver, "//*[normalize-space()='Custom run']", f"{step}-run-menu").click()

    clickable(driver, form_property("request_id") + "//textarea", f"{step}-form").send_keys(
        request_id
    )
    # Optional (a request already in the ledger needs none): the form offers list or None.
    emails = form_property("subject_emails (Optional)")
    clickable(driver, emails + "//button[normalize-space()='list']", f"{step}-form").click()
    clickable(driver, emails + "//button[normalize-space()='Add item']", f"{step}-form").click()
    clickable(
        driver,
        emails + "//div[contains(@class,'p-draggable-list__item')]//textarea",
        f"{step}-form",
    ).send_keys(SUBJECT)
    # What the officer decides, each field with its description; where the config and the
    # exports are is the deployment's (its worker's environment), not the form's.
    assert "DSR-2026-0001" in driver.find_element(By.XPATH, form_property("request_id")).text
    labels = driver.find_elements(By.XPATH, "//span[@class='schema-form-property__label']")
    shown = {label.text.removesuffix(" (Optional)") for label in labels}
    assert "subject_emails" in shown and not shown & {"config_path", "out_dir"}
    shot(driver, f"{step}-01-run-form-filled")
    submit = "//button[@type='submit' and normalize-space()='Submit']"
    clickable(driver, submit, step).click()

    # The toast announcing the new run; it slides in, so click it by script. On a loaded
    # machine the UI's request may fail ("Oops. Something went wrong"): submit once more (a
    # second run of the same request id is the same request, the ledger makes sure of it).
    view_run = "//button[normalize-space()='View run']"
    oops = "//*[contains(normalize-space(),'Something went wrong')]"
    until(
        driver,
        EC.any_of(
            EC.element_to_be_clickable((By.XPATH, view_run)),
            EC.visibility_of_element_located((By.XPATH, oops)),
        ),
        f"{step}-submitted",
    )
    if not driver.find_elements(By.XPATH, view_run):
        shot(driver, f"{step}-02-submit-failed-once")
        clickable(driver, submit, step).click()
    view = clickable(driver, view_run, f"{step}-submitted")
    shot(driver, f"{step}-02-run-submitted")
    driver.execute_script("arguments[0].click()", view)
    until(driver, EC.url_contains("/runs/flow-run/"), f"{step}-run-page")
    return driver.current_url.split("/runs/flow-run/")[1].split("?")[0]


# --- the tests ---------------------------------------------------------------------------------


def test_access_request_started_from_the_run_form_completes(stack, browser):
    run_id = start_from_run_form(
        browser, stack.ui_url, "access-request", "DSR-2026-0901", "1-access"
    )

    run = wait_for_state(run_id, StateType.COMPLETED)
    assert run.name == "DSR-2026-0901"  # the flow names its run after the request
    assert run.parameters["request_id"] == "DSR-2026-0901"
    # The identifiers went to the ledger; Prefect keeps the run's request id only.
    assert run.parameters["subject_emails"] is None

    open_run_page(browser, stack.ui_url, run_id, "Completed", "1-access-run-page")
    heading = browser.find_element(By.XPATH, HEADING)
    assert "DSR-2026-0901" in heading.text
    assert "Completed" in heading.text
    shot(browser, "1-access-03-run-completed")

    export = load_config(stack.config_path).output_dir / "DSR-2026-0901" / "export.json"
    assert json.loads(export.read_text("utf-8"))["request"]["id"] == "DSR-2026-0901"


def test_erasure_request_pauses_shows_its_plan_and_completes_after_approval(stack, browser):
    ui = stack.ui_url
    run_id = start_from_run_form(browser, ui, "erasure-request", "DSR-2026-0902", "2-erasure")

    run = wait_for_state(run_id, StateType.PAUSED)
    assert run.name == "DSR-2026-0902"
    open_run_page(browser, ui, run_id, "Paused", "2-erasure-paused")
    visible(browser, "//button[normalize-space()='Resume']", "2-erasure-paused")
    shot(browser, "2-erasure-03-run-paused")

    # The Artifacts tab lists the plan (a table) and its summary (markdown).
    clickable(
        browser, "//li[contains(@class,'p-tab') and normalize-space()='Artifacts']", "2-tab"
    ).click()
    summary_card = visible(
        browser,
        "//a[.//div[@class='artifact-card__title' and "
        "normalize-space()='erasure-plan-dsr-2026-0902-summary']]",
        "2-erasure-artifacts",
    )
    titles = {
        e.text
        for e in browser.find_elements(By.XPATH, "//div[@class='artifact-card__title']")
        if e.text
    }
    assert {"erasure-plan-dsr-2026-0902", "erasure-plan-dsr-2026-0902-summary"} <= titles
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary_card)
    shot(browser, "2-erasure-04-artifacts-tab")

    # The summary, rendered: counts per action and the subject masked, never in the clear.
    summary_card.click()
    plan = visible(
        browser, "//*[normalize-space()='erasure plan for DSR-2026-0902']", "2-erasure-summary"
    )
    assert plan.tag_name.startswith("h")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "k***@example.com" in page
    assert "delete:" in page
    assert SUBJECT not in browser.page_source
    shot(browser, "2-erasure-05-plan-summary")

    # Approve with the run's Resume form, as the officer does.
    open_run_page(browser, ui, run_id, "Paused", "2-erasure-back-to-run")
    clickable(browser, "//button[normalize-space()='Resume']", "2-erasure-resume").click()
    modal = "//div[contains(@class,'p-modal__card')]"
    visible(browser, modal + "//*[normalize-space()='Resume Flow Run']", "2-erasure-modal")
    toggle = clickable(
        browser, modal + form_property("Approved") + "//label[@role='switch']", "2-approve"
    )
    toggle.click()
    until(browser, lambda _: toggle.get_attribute("aria-checked") == "true", "2-approve")
    browser.find_element(By.XPATH, modal + form_property("Officer") + "//textarea").send_keys(
        "Ingrid"
    )
    browser.find_element(
        By.XPATH, modal + form_property("Note (Optional)") + "//textarea"
    ).send_keys("ok")
    shot(browser, "2-erasure-06-resume-form-filled")
    submit_resume_form(browser, "2-erasure-resume-sent")

    wait_for_state(run_id, StateType.COMPLETED)
    open_run_page(browser, ui, run_id, "Completed", "2-erasure-completed")
    assert "DSR-2026-0902" in browser.find_element(By.XPATH, HEADING).text
    shot(browser, "2-erasure-07-run-completed")

    # The form's answer reached the flow: the ledger records who approved, with the note.
    approvals = [e for e in ledger_entries(stack, "DSR-2026-0902") if e.event == "approved"]
    assert [(e.actor, e.details.get("note")) for e in approvals] == [("Ingrid", "ok")]


def test_deadline_report_table_is_visible_on_the_artifacts_page(stack, browser):
    # An open request: an erasure waiting for approval.
    waiting = run_deployment(
        "erasure-request/erasure-request",
        parameters={"request_id": "DSR-2026-0903", "subject_emails": [SUBJECT]},
        timeout=0,
    )
    wait_for_state(waiting.id, StateType.PAUSED)
    report = wait_for_state(
        run_deployment("deadline-report/deadline-report", timeout=0).id, StateType.COMPLETED
    )

    browser.get(f"{stack.ui_url}/artifacts")
    card = visible(
        browser,
        "//a[.//*[contains(@class,'artifact-card__title') and normalize-space()='open-requests']]",
        "3-artifacts",
    )
    shot(browser, "3-deadlines-01-artifacts-page")
    card.click()

    # The key's page: a timeline of the report's artifacts, the newest from this report run.
    latest = visible(
        browser,
        "//div[contains(@class,'artifact-timeline-item-content')][.//a[normalize-space()="
        f"'{report.name}']]//a[contains(@href,'/artifacts/artifact/')]",
        "3-open-requests-timeline",
    )
    shot(browser, "3-deadlines-02-open-requests-timeline")
    latest.click()

    row = visible(browser, "//tr[td[normalize-space()='DSR-2026-0903']]", "3-open-requests")
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert "erasure" in cells
    assert "awaiting_approval" in cells
    headers = [th.text for th in browser.find_elements(By.XPATH, "//table//th")]
    assert {"request", "due", "days left"} <= set(headers)
    shot(browser, "3-deadlines-03-open-requests-table")

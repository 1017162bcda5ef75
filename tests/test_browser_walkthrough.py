"""One request from the service-desk ticket to the delivered answer, in the real Prefect UI
(headless Chromium against the whole stack of ``dsrflow.stack.up``), as README's "A request
from ticket to answer" shows it:

1. the subject raises a "Privacy request" on the desk as herself (Create customer request);
2. the officer runs the intake deployment from the UI (Run → Quick run); it opens the request
   in the ledger and starts its confirm-request run;
3. the officer answers that run's Resume form (type, "the requester is the subject", note);
   the access-request run starts with the request id only, and completes;
4. the case page (artifact ``case-<id>``) shows the request received, the sources' findings,
   identity not verified yet and nothing delivered;
5. the stack's config requires a verified identity here (the sandbox's does not): delivery is
   refused until ``dsr identity service-desk`` matches the ticket's reporter to the subject;
6. ``dsr deliver --via jira`` attaches the encrypted archive to her ticket: the Jira emulator
   holds it, it decrypts with the password the command gave, and matches the manifest; the
   case page shows the delivery.

Each step is checked on real state (the ledger, the emulator, the artifact), and leaves
``.artifacts/browser/walkthrough-NN-<step>.png``; ``scripts/walkthrough_screenshots.py`` copies
them to ``docs/walkthrough/`` for the README.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import MISSING, have_chromium

if not have_chromium():
    pytest.skip(MISSING, allow_module_level=True)

import httpx
import sqlalchemy as sa
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import ArtifactSort
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from connectors.jira.settings import JiraSource
from dsrflow import stack as officer_stack
from dsrflow.config import load_config
from dsrflow.ledger import Ledger, intake_table
from flows.case_page import case_key
from sandbox import jira_seed
from tests.support.browser import (
    RESUME_MODAL,
    RUN_WAIT,
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
from tests.support.handover import matches_manifest, password_in, unpacked

SUBJECT = "kari.nordmann@example.com"
KARI = (SUBJECT, jira_seed.DEMO_CUSTOMER_TOKEN)
ADMIN = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
OFFICER = "Ingrid"
WINDOW = (1280, 900)  # the README's screenshots, small enough to commit as they are
PREFIX = "walkthrough"
SLOW_RUN = 300  # seconds: each step starts a flow run process, on a machine shared with others


def require_identity(stack: officer_stack.Stack) -> None:
    """The sandbox's config lets delivery go ahead unverified (its subjects are invented);
    this stack's asks for the identity, as a controller's does. Flow runs and commands read
    the file afresh, so the change holds for everything after it."""
    path = stack.config_path
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.setdefault("identity", {})["required"] = True
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    assert load_config(path).identity.required


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[officer_stack.Stack]:
    yield from running_stack(tmp_path_factory, prepare=require_identity)


@pytest.fixture(scope="module")
def browser(
    tmp_path_factory: pytest.TempPathFactory, stack: officer_stack.Stack
) -> Iterator[WebDriver]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for pattern in (f"{PREFIX}-*", f"FAILED-{PREFIX}-*"):  # this test's only; the others stay
        for old in SHOTS.glob(pattern):
            old.unlink()
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), WINDOW)
    try:
        log_in(driver, stack, step=f"{PREFIX}-00-login")
        yield driver
    finally:
        driver.quit()


# --- step helpers ------------------------------------------------------------------------------


def jira_url(stack: officer_stack.Stack) -> str:
    source = load_config(stack.config_path).sources["jira"]
    assert isinstance(source, JiraSource)
    return source.url.rstrip("/")


def raise_privacy_request(url: str) -> dict[str, Any]:
    """Kari, logged in as herself, raises a request of the desk's privacy type (Jira Service
    Management: Get request types, then Create customer request)."""
    types = httpx.get(
        f"{url}/rest/servicedeskapi/servicedesk/{jira_seed.DESK_ID}/requesttype", auth=KARI
    )
    assert types.status_code == 200, types.text
    (privacy,) = [t for t in types.json()["values"] if t["name"] == "Privacy request"]
    created = httpx.post(
        f"{url}/rest/servicedeskapi/request",
        auth=KARI,
        json={
            "serviceDeskId": jira_seed.DESK_ID,
            "requestTypeId": privacy["id"],
            "requestFieldValues": {
                "summary": "Innsyn i personopplysninger",
                "description": "Jeg ber om innsyn: en kopi av opplysningene dere har om meg.",
            },
        },
    )
    assert created.status_code == 201, created.text
    return created.json()


def request_of_ticket(stack: officer_stack.Stack, key: str) -> str | None:
    """The request the intake opened for the ticket, if any (the ledger's intake table)."""
    ledger = Ledger(load_config(stack.config_path).ledger_url)
    try:
        with ledger.engine.connect() as conn:
            return conn.execute(
                sa.select(intake_table.c.request_id).where(
                    intake_table.c.key == f"servicedesk:{key}"
                )
            ).scalar()
    finally:
        ledger.close()


def quick_run(driver: WebDriver, ui_url: str, deployment: str, step: str) -> str:
    """Deployments → the deployment → Run → Quick run (its own parameters); the run's id."""
    driver.get(f"{ui_url}/deployments")
    clickable(
        driver,
        f"//a[contains(@href,'/deployments/deployment/') and normalize-space()='{deployment}']",
        f"{step}-deployments",
    ).click()
    clickable(driver, "//button[normalize-space()='Run']", f"{step}-deployment").click()
    quick = clickable(driver, "//*[normalize-space()='Quick run']", f"{step}-run-menu")
    shot(driver, f"{step}-quick-run")
    quick.click()
    view = clickable(driver, "//button[normalize-space()='View run']", f"{step}-submitted")
    driver.execute_script("arguments[0].click()", view)  # the toast slides in
    until(driver, EC.url_contains("/runs/flow-run/"), f"{step}-run-page")
    return driver.current_url.split("/runs/flow-run/")[1].split("?")[0]


def confirm_run_of(request_id: str, timeout: float = RUN_WAIT) -> str:
    """The request's confirm-request run: it takes its name (``confirm-<id>``) when it starts,
    so wait for that."""
    name = f"confirm-{request_id}"
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            if runs:
                assert len(runs) == 1, [str(r.id) for r in runs]
                return str(runs[0].id)
            if time.monotonic() > deadline:
                pytest.fail(f"no flow run {name} after {timeout} s")
            time.sleep(1)


def intake_artifact_listing(request_id: str) -> str:
    """The id of the ``intake`` artifact that lists ``request_id`` as opened."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["intake"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    listing = [a for a in artifacts if f"- opened {request_id}\n" in str(a.data)]
    assert len(listing) == 1, [str(a.data) for a in artifacts]
    return str(listing[0].id)


def latest_case_page(request_id: str) -> tuple[str, str]:
    """The newest version of the request's case page: its id and markdown."""
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[case_key(request_id)])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return str(artifact.id), str(artifact.data)


def show_case_page(driver: WebDriver, ui_url: str, request_id: str, wanted: str, step: str) -> str:
    """Open the newest case page in the UI once it says ``wanted``; its rendered text."""
    artifact_id, markdown = latest_case_page(request_id)
    assert wanted in markdown, markdown
    driver.get(f"{ui_url}/artifacts/artifact/{artifact_id}")
    visible(driver, f"//*[normalize-space()='{request_id}: access']", step)
    body = driver.find_element(By.TAG_NAME, "body")
    driver.execute_script("window.scrollTo(0, 0)")
    assert SUBJECT not in driver.page_source.lower()  # the page names nobody
    return body.text


def dsr(stack: officer_stack.Stack, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The officer's command against the stack: its config, its Prefect API (so that what the
    command records shows on the case page at once)."""
    env = {
        **os.environ,
        **officer_stack.client_environment(stack.directory),
        "PREFECT_HOME": str(home),
    }
    return subprocess.run(
        [str(officer_stack.BIN / "dsr"), *args, "--config", str(stack.config_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def events(stack: officer_stack.Stack, request_id: str, event: str) -> list[Any]:
    return [e for e in ledger_entries(stack, request_id) if e.event == event]


# --- the walk-through --------------------------------------------------------------------------


def test_a_request_from_the_ticket_to_the_delivered_answer(stack, browser, tmp_path):
    ui, url = stack.ui_url, jira_url(stack)

    # 1. Kari raises a privacy request on the desk, as herself.
    ticket = raise_privacy_request(url)
    key = ticket["issueKey"]
    issue = httpx.get(f"{url}/rest/api/2/issue/{key}", auth=ADMIN).json()
    assert issue["fields"]["reporter"]["emailAddress"].lower() == SUBJECT
    created = dt.datetime.fromtimestamp(ticket["createdDate"]["epochMillis"] / 1000, dt.UTC)

    # 2. The officer runs the intake from its deployment page.
    intake_run = quick_run(browser, ui, "intake", f"{PREFIX}-01-intake")
    wait_for_state(intake_run, StateType.COMPLETED, SLOW_RUN)
    # An intake run opened it (this one, or the deployment's 15-minute schedule just before):
    # its artifact lists the request id.
    request_id = request_of_ticket(stack, key)
    assert request_id is not None, f"no intake run opened {key}"
    browser.get(f"{ui}/artifacts/artifact/{intake_artifact_listing(request_id)}")
    visible(browser, f"//li[normalize-space()='opened {request_id}']", f"{PREFIX}-02-intake")
    assert "servicedesk:" in browser.find_element(By.TAG_NAME, "body").text
    shot(browser, f"{PREFIX}-02-intake-artifact")
    (received,) = events(stack, request_id, "received")
    assert (received.actor, received.details) == (
        "intake",
        {"type": "access", "channel": "servicedesk"},
    )
    with Ledger(load_config(stack.config_path).ledger_url) as ledger:
        row = ledger.request_row(request_id)
    assert row is not None and row["status"] == "received"
    received_at = row["received_at"].replace(tzinfo=row["received_at"].tzinfo or dt.UTC)
    assert abs(received_at - created) < dt.timedelta(seconds=1)  # the ticket's time, not ours

    # 3. Its confirm-request run waits for the officer; she answers its Resume form.
    confirm_run = confirm_run_of(request_id)
    wait_for_state(confirm_run, StateType.PAUSED, SLOW_RUN)
    open_run_page(browser, ui, confirm_run, "Paused", f"{PREFIX}-03-confirm")
    shot(browser, f"{PREFIX}-03-confirm-paused")
    clickable(browser, "//button[normalize-space()='Resume']", f"{PREFIX}-03-resume").click()
    visible(browser, RESUME_MODAL + f"//*[normalize-space()='Confirm {request_id}']", "3-modal")
    modal = browser.find_element(By.XPATH, RESUME_MODAL)
    assert "k***@example.com" in modal.text  # the requester, masked
    assert SUBJECT not in browser.page_source.lower()
    # The type the ticket asks for is proposed; the officer confirms it in the select.
    kind = Select(
        visible(
            browser,
            RESUME_MODAL
            + form_property("Request Type (Optional)")
            + "//select[not(contains(@class,'placeholder'))]",
            f"{PREFIX}-04-form",
        )
    )
    assert kind.first_selected_option.get_attribute("value") == "access"
    kind.select_by_value("access")
    toggle = browser.find_element(
        By.XPATH,
        RESUME_MODAL
        + form_property("Use Requester Address (Optional)")
        + "//label[@role='switch']",
    )
    assert toggle.get_attribute("aria-checked") == "true"  # the requester is the subject
    browser.find_element(
        By.XPATH, RESUME_MODAL + form_property("Officer") + "//textarea"
    ).send_keys(OFFICER)
    browser.find_element(
        By.XPATH, RESUME_MODAL + form_property("Note (Optional)") + "//textarea"
    ).send_keys("raised from her own service-desk account")
    shot(browser, f"{PREFIX}-04-confirm-form")
    submit_resume_form(browser, f"{PREFIX}-04-confirm-sent")
    wait_for_state(confirm_run, StateType.COMPLETED, SLOW_RUN)
    (confirmed,) = events(stack, request_id, "intake_confirmed")
    assert (confirmed.actor, confirmed.details["type"]) == (OFFICER, "access")
    (started,) = events(stack, request_id, "started")
    access_run = started.details["flow_run"]

    # The request's run has the request id and the deployment's settings; nobody's address.
    # (It takes the request's id as its name when it starts.)
    run = wait_for_state(access_run, StateType.COMPLETED, SLOW_RUN)
    assert run.name == request_id
    assert run.parameters["request_id"] == request_id
    assert {k for k, v in run.parameters.items() if v is not None} <= {"request_id", "config_path"}
    assert SUBJECT not in json.dumps(run.parameters).lower()
    open_run_page(browser, ui, access_run, "Completed", f"{PREFIX}-05-access")
    shot(browser, f"{PREFIX}-05-access-completed")

    # 4. The case page: received, what each source found, identity and delivery still open.
    (exported,) = events(stack, request_id, "exported")
    found = exported.details["per_source"]
    assert found and sum(found.values()) > 0
    page = show_case_page(browser, ui, request_id, "identity: not verified yet", f"{PREFIX}-06")
    assert "delivery: not delivered" in page
    assert f"received: {created:%Y-%m-%d %H:%M} UTC" in page
    for source, n in found.items():
        assert f"{source} found {n}" in page
    shot(browser, f"{PREFIX}-06-case-page-answered")

    # 5. Identity: no delivery before it; the ticket's reporter is the subject.
    refused = dsr(stack, tmp_path, "deliver", request_id, "--via", "jira", "--ticket", key)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "identity is not verified" in refused.stdout + refused.stderr
    assert events(stack, request_id, "delivered") == []
    verified = dsr(
        stack,
        tmp_path,
        "identity",
        "service-desk",
        request_id,
        "--ticket",
        key,
        "--officer",
        OFFICER,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (identity,) = events(stack, request_id, "identity_verified")
    assert identity.actor == OFFICER
    assert identity.details == {"method": "service_desk", "ticket": key}

    # 6. Delivery to her own ticket, the password to be given separately.
    done = dsr(stack, tmp_path, "deliver", request_id, "--via", "jira", "--officer", OFFICER)
    assert done.returncode == 0, done.stdout + done.stderr
    password = password_in(done.stdout)
    (delivered,) = events(stack, request_id, "delivered")
    assert (delivered.details["via"], delivered.details["ticket"]) == ("jira", key)
    attachments = httpx.get(
        f"{url}/rest/api/2/issue/{key}", auth=ADMIN, params={"fields": "attachment"}
    ).json()["fields"]["attachment"]
    (attached,) = attachments
    assert attached["filename"].startswith(f"{request_id}-")
    archive = httpx.get(
        f"{url}/rest/api/2/attachment/content/{attached['id']}", auth=ADMIN, follow_redirects=True
    ).content
    assert hashlib.sha256(archive).hexdigest() == delivered.details["archive_sha256"]
    matches_manifest(unpacked(archive, password), Path(delivered.details["export_dir"]))
    assert password not in json.dumps([e.details for e in ledger_entries(stack, request_id)])

    page = show_case_page(browser, ui, request_id, f"delivery: jira by {OFFICER}", f"{PREFIX}-07")
    assert f"identity: service_desk by {OFFICER}" in page
    shot(browser, f"{PREFIX}-07-case-page-delivered")

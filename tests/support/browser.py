"""What the browser tests share (tests/test_browser_ui.py, tests/test_browser_walkthrough.py):
headless Chromium (Debian's package, installed by ``scripts/ensure-browser.sh``) against the
whole stack of ``dsrflow.stack.up``, waits that leave a screenshot and the DOM behind when they
time out, the Prefect UI's login and forms, and the API calls that check a run's state.

Screenshots go to ``.artifacts/browser/`` (git-ignored) at the repository root."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from dsrflow import stack as officer_stack
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from tests.conftest import REPO
from tests.support.stack import free_port, stack_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = (
    f"{CHROMIUM} or {CHROMEDRIVER} is missing: run `bash scripts/ensure-browser.sh` "
    "(Debian's chromium and chromium-driver packages)"
)
SHOTS = REPO / ".artifacts" / "browser"
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium's own connections are refused on a closed network and stall it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
UI_WAIT = 30  # seconds for the UI to render something
RUN_WAIT = 150  # seconds for a flow run to reach a state


def have_chromium() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    prepare: Callable[[officer_stack.Stack], None] = lambda _stack: None,
) -> Iterator[officer_stack.Stack]:
    """The officer's stack on a free port (for a module-scoped fixture); the client of this
    process talks to its API. ``prepare`` runs once the stack is up, before any test."""
    directory = tmp_path_factory.mktemp("stack")
    try:
        with stack_environment():
            running = officer_stack.up(directory, port=free_port())
        prepare(running)
        with officer_stack.connected(directory):
            yield running
    finally:
        officer_stack.down(directory)


def start_chromium(profile: Path, window: tuple[int, int] = (1400, 1000)) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


# --- browser helpers ---------------------------------------------------------------------------


def shot(driver: WebDriver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved to {path}"
    return path


def until(driver: WebDriver, condition: Callable[[Any], Any], step: str, timeout: float = UI_WAIT):
    """WebDriverWait, leaving the screenshot and the DOM behind when it times out."""
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        shot(driver, f"FAILED-{step}")
        (SHOTS / f"FAILED-{step}.html").write_text(driver.page_source)
        raise


def clickable(driver: WebDriver, xpath: str, step: str) -> WebElement:
    return until(driver, EC.element_to_be_clickable((By.XPATH, xpath)), step)


def visible(driver: WebDriver, xpath: str, step: str) -> WebElement:
    return until(driver, EC.visibility_of_element_located((By.XPATH, xpath)), step)


def form_property(label: str) -> str:
    """XPath of one field of a Prefect schema form (the run form, the Resume form)."""
    return (
        "//div[contains(@class,'p-label') and contains(@class,'schema-form-property')]"
        f"[.//span[@class='schema-form-property__label' and normalize-space()='{label}']]"
    )


def log_in(driver: WebDriver, stack: officer_stack.Stack, step: str = "0-login") -> None:
    """The UI of a server with an auth string opens on its login page; the officer types the
    credential from the stack's owner-only file there."""
    driver.get(stack.ui_url)
    until(driver, EC.url_contains("/login"), step)
    field = visible(driver, "//input[@type='password']", step)
    field.send_keys(officer_stack.credential(stack.directory))
    shot(driver, f"{step}-01-filled")
    clickable(driver, "//button[@type='submit'][normalize-space()='Login']", step).click()
    until(driver, lambda d: "/login" not in d.current_url, f"{step}-logged-in")
    assert driver.execute_script("return localStorage.getItem('prefect-password')")


HEADING = "//header[contains(@class,'page-heading-flow-run')]"
RESUME_MODAL = "//div[contains(@class,'p-modal__card')]"


def state_badge(state: str) -> str:
    """XPath of the state badge in a flow run page's heading."""
    return f"{HEADING}//span[contains(@class,'state-badge')][normalize-space()='{state}']"


def open_run_page(driver: WebDriver, ui_url: str, run_id: str, state: str, step: str) -> None:
    driver.get(f"{ui_url}/runs/flow-run/{run_id}")
    visible(driver, state_badge(state), step)


def submit_resume_form(driver: WebDriver, step: str) -> None:
    """Submit the Resume form and wait for it to close. On a loaded machine the UI's resume
    call may fail and leave the form open: submit once more (the API refuses an answer to a
    run that is no longer paused, so a second one resumes nothing twice)."""
    submit = (
        RESUME_MODAL
        + "//div[contains(@class,'p-modal__footer')]//button[normalize-space()='Submit']"
    )
    closed = EC.invisibility_of_element_located((By.XPATH, RESUME_MODAL))
    driver.find_element(By.XPATH, submit).click()
    try:
        WebDriverWait(driver, UI_WAIT).until(closed)
    except TimeoutException:
        shot(driver, f"{step}-resubmitted")
        driver.find_element(By.XPATH, submit).click()
        until(driver, closed, step)


# --- API helpers -------------------------------------------------------------------------------


def wait_for_state(run_id: Any, wanted: StateType, timeout: float = RUN_WAIT) -> FlowRun:
    """Poll the API until the run reaches ``wanted``; fail at once on another final state."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            state = run.state
            if state is not None and state.type == wanted:
                return run
            if state is not None and state.is_final():
                pytest.fail(f"flow run {run.name} ended {state.name}: {state.message}")
            if time.monotonic() > deadline:
                pytest.fail(f"flow run {run.name} still {state and state.name} after {timeout} s")
            time.sleep(0.5)


def ledger_entries(stack: officer_stack.Stack, request_id: str) -> list[Any]:
    ledger = Ledger(load_config(stack.config_path).ledger_url)
    try:
        return list(ledger.entries(request_id))
    finally:
        ledger.close()

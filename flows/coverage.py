"""The coverage check (issue 15): every source surveyed for personal data outside its mapping,
weekly. The report is a markdown artifact (places by id, counts; no addresses, no titles) and
its time and open-finding count go to the ledger, where access requests read them."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from dsrflow.config import Config
from dsrflow.coverage import coverage_warning, store, survey
from dsrflow.ledger import Ledger
from dsrflow.run_settings import current_run_settings
from flows.private import private_run, scrub


@flow(name="coverage-check", persist_result=False)
@private_run
def coverage_check() -> int:
    """Survey every source; returns the number of open findings (findings and sources that
    could not be surveyed). The findings themselves stay in this process: they may name an
    employee's mailbox or a spreadsheet's title, which the artifact leaves out."""
    config = current_run_settings().config()
    report = survey(config)
    create_markdown_artifact(
        key="coverage-report",
        markdown=report.markdown(scrub),
        description="Personal data outside the mappings: places and counts (dsr coverage "
        "prints the mapping entries)",
    )
    with Ledger.from_config(config) as ledger:
        store(ledger, report)
    get_run_logger().info(
        "coverage: %d finding(s), %d source(s) not surveyed",
        len(report.findings),
        len(report.not_surveyed),
    )
    return report.open_findings


def coverage_notice(ledger: Ledger, config: Config) -> str | None:
    """For an access request: warn (run log; the caller shows it too) when the last coverage
    report is missing, too old or has open findings. A warning, not a stop: the answer is due
    within the month either way, and the officer decides."""
    warning = coverage_warning(ledger, config)
    if warning:
        get_run_logger().warning("coverage: %s", warning)
    return warning

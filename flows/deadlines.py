"""The deadline report: open requests with their due dates and days left, overdue first,
published as a table artifact the officer finds on the Prefect UI's dashboard, each row
linking to the request's case page (flows/case_page.py)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from dsrflow.ledger import Ledger
from dsrflow.run_settings import current_run_settings
from flows.case_page import case_key, case_url
from flows.private import private_run


@flow(name="deadline-report", persist_result=False)
@private_run
def deadline_report() -> int:
    """Publish the open requests; returns how many are overdue."""
    config = current_run_settings().config()
    with Ledger.from_config(config) as ledger:
        rows = ledger.open_requests()
    table = [
        {
            "request": r["id"],
            "type": r["type"],
            "status": r["status"],
            "due": r["due_at"].isoformat(),
            "days left": r["days_left"],
            "overdue": "yes" if r["days_left"] < 0 else "",
            "case page": case_url(r["id"]) or f"artifact {case_key(r['id'])}",
        }
        for r in rows
    ]
    create_table_artifact(
        key="open-requests",
        table=table
        or [
            {
                "request": "none open",
                "type": "",
                "status": "",
                "due": "",
                "days left": "",
                "overdue": "",
                "case page": "",
            }
        ],
        description="Open data-subject requests, overdue first (Art. 12(3): one month)",
    )
    overdue = sum(1 for r in rows if r["days_left"] < 0)
    get_run_logger().info("%d open request(s), %d overdue", len(rows), overdue)
    return overdue

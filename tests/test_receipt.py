"""The receipt says only what is true: what a deletion left at the vendor, and the step that
finishes it, travels from the connector's result to the subject's receipt."""

import datetime as dt

from dsrflow.config import Controller
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.receipt import build_receipt, plan_digest, write_receipt
from dsrflow.request import DataSubjectRequest, RequestType, Subject

CONTROLLER = Controller(name="Fjelltopp Apps AS", address="Trondheim", contact_email="p@x.no")
REMAINS = "a copy stays in Recoverable Items for 14 days; a compliance admin can purge it now"


def _action(native: str) -> PlannedAction:
    return PlannedAction(
        record_id=f"mail:inbox:{native}",
        source="mail",
        location="inbox",
        native_id={"id": native},
        action=Action.DELETE,
    )


def test_what_remains_at_the_vendor_is_on_the_receipt(tmp_path):
    plan = [_action("m1"), _action("m2")]
    report = ExecutionReport(
        source="mail",
        results=[
            ActionResult(record_id="mail:inbox:m1", outcome=Outcome.DONE, remains=REMAINS),
            ActionResult(record_id="mail:inbox:m2", outcome=Outcome.DONE),
        ],
    )
    request = DataSubjectRequest(
        id="DSR-2026-33900001",
        type=RequestType.ERASURE,
        subject=Subject.from_raw(["al@example.com"]),
        received_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )
    receipt = build_receipt(request, CONTROLLER, plan, [report], "Ingrid", plan_digest(plan))
    assert [line.remains for line in receipt.changed] == [REMAINS, None]
    _, html = write_receipt(receipt, tmp_path)
    page = html.read_text()
    assert "still keep for a while (1)" in page
    assert REMAINS in page

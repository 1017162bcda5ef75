"""The mail coverage survey over real HTTP (msgraph-sdk against the Graph emulator): a user
with a mailbox the mapping does not list is named by Graph user id, with the address for the
officer only; a guest without a mailbox is not a finding; ``all_users`` leaves nothing out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from connectors.base import Surveying
from connectors.mail.client import StaticTokenCredential
from connectors.mail.connector import MailConnector
from connectors.mail.mapping import MailMapping
from connectors.mail.settings import MailSource
from dsrflow.coverage import CoverageReport
from tests.support.graph import BASE_MAPPING

LISTED = ["support@fjelltopp.example", "Sales@Fjelltopp.example"]


def test_a_mailbox_the_mapping_does_not_list_is_named_by_its_user_id(graph):
    graph.store.add_user_without_mailbox(
        "guest_example.org#EXT#@fjelltopp.example", mail="guest@example.org"
    )
    graph.store.add_message(
        "privacy@fjelltopp.example", {"subject": "x", "folder": "Inbox", "body": {}}
    )
    connector = graph.connector(mailboxes={"addresses": LISTED})
    assert isinstance(connector, Surveying)
    findings = connector.survey()
    privacy = graph.store.mailbox("privacy@fjelltopp.example")
    assert [(f.what, f.place, f.label) for f in findings] == [
        ("mailbox", privacy.user_id, "privacy@fjelltopp.example")
    ]
    inbox = sum(
        1
        for m in privacy.messages.values()
        if m.resource["parentFolderId"] == privacy.folder("inbox").id
    )
    assert inbox >= 2
    assert findings[0].evidence.endswith(f"its Inbox holds {inbox} message(s)")
    assert findings[0].snippet.splitlines() == [
        "mailboxes:",
        "  addresses:",
        "    - support@fjelltopp.example",
        "    - Sales@Fjelltopp.example",
        "    - privacy@fjelltopp.example",
    ]
    # Prefect's copy of the report names the place by id; the address stays at the terminal.
    report = CoverageReport(at=dt.datetime.now(dt.UTC), findings=findings, surveyed=["mail"])
    assert privacy.user_id in report.markdown()
    assert "privacy@" not in report.markdown()
    assert any("privacy@fjelltopp.example" in line for line in report.lines())


def test_all_users_leaves_no_mailbox_out(graph):
    assert graph.connector(mailboxes={"all_users": True}).survey() == []
    assert graph.requests() == {}  # not even the users list is read


def test_every_listed_mailbox_is_covered(graph):
    every = [*LISTED, "privacy@fjelltopp.example"]
    assert graph.connector(mailboxes={"addresses": every}).survey() == []


def test_a_mailbox_the_app_may_not_open_is_still_named(graph):
    from tests.test_graph_permissions import app_token

    connector = MailConnector(
        "mail",
        MailMapping.model_validate({**BASE_MAPPING, "mailboxes": {"addresses": LISTED}}),
        MailSource(kind="mail", mapping=Path("mail.yaml"), base_url=f"{graph.url}/v1.0"),
        credential=StaticTokenCredential(app_token(["User.Read.All"])),  # no Mail.Read
    )
    graph.opened.append(connector)
    findings = connector.survey()
    assert [f.label for f in findings] == ["privacy@fjelltopp.example"]
    assert findings[0].evidence == (
        "a mailbox the mapping does not list; the app may not open it (HTTP 403 "
        "ErrorAccessDenied), so its messages were not counted"
    )

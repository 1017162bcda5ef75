"""Who is asking: the Graph emulator checks the application permissions (``roles``) of an
app-only token per route as Graph does, so a too-narrow app fails here as at Microsoft."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import SourceUnavailable
from connectors.mail.client import SANDBOX_TOKEN, StaticTokenCredential
from connectors.mail.connector import MailConnector
from connectors.mail.mapping import MailMapping
from connectors.mail.settings import MailSource
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject
from sandbox.emulators.graph.permissions import token_roles
from tests.support.graph import BASE_MAPPING

SUPPORT = "support@fjelltopp.example"


def app_token(roles: list[str]) -> str:
    """An app-only token as Entra ID issues it: a JWT whose ``roles`` are its permissions."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'roles': roles})}.signature"


def connector_with(graph, roles: list[str]) -> MailConnector:
    settings = MailSource(
        kind="mail", mapping=Path("mail.yaml"), base_url=f"{graph.url}/v1.0", max_retries=0
    )
    connector = MailConnector(
        "mail",
        MailMapping.model_validate(BASE_MAPPING),
        settings,
        retry_delay_s=0.01,
        credential=StaticTokenCredential(app_token(roles)),
    )
    graph.opened.append(connector)
    return connector


def get(graph, path, roles, method="GET", **kwargs):
    headers = {"Authorization": f"Bearer {app_token(roles)}"}
    return httpx.request(method, f"{graph.url}/v1.0{path}", headers=headers, timeout=10, **kwargs)


def test_routes_need_their_application_permissions(graph):
    message = f"/users/{SUPPORT}/messages/sup-sal"
    assert get(graph, message, ["Mail.Read"]).status_code == 200
    assert get(graph, message, ["Mail.ReadBasic.All"]).status_code == 200
    refused = get(graph, message, ["User.Read.All"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ErrorAccessDenied"
    users = get(graph, "/users", ["Mail.ReadWrite"])
    assert users.status_code == 403
    assert users.json()["error"]["code"] == "Authorization_RequestDenied"
    attachments = get(
        graph, f"/users/{SUPPORT}/messages/sup-al-1/attachments", ["Mail.ReadBasic.All"]
    )
    assert attachments.status_code == 403
    # Deleting needs Mail.ReadWrite, alone or in a $batch item.
    assert get(graph, message, ["Mail.Read"], method="DELETE").status_code == 403
    batch = {"requests": [{"id": "1", "method": "POST", "url": f"{message}/permanentDelete"}]}
    answer = get(graph, "/$batch", ["Mail.Read"], method="POST", json=batch).json()
    assert answer["responses"][0]["status"] == 403
    assert graph.store.mailbox(SUPPORT).messages.get("sup-sal") is not None
    assert get(graph, message, ["Mail.ReadWrite"], method="DELETE").status_code == 204


def test_a_read_only_app_finds_but_cannot_erase(graph):
    before = graph.store.count()
    reader = connector_with(graph, ["Mail.Read", "User.Read.All"])
    records = list(reader.discover(Subject.from_raw(["al@example.com"])))
    assert records
    actions = [
        PlannedAction(
            record_id=r.record_id,
            source=r.source,
            location=r.location,
            native_id=r.native_id,
            action=Action.DELETE,
        )
        for r in {r.record_id: r for r in records}.values()
    ]
    report = reader.erase(actions, Subject.from_raw(["al@example.com"]))
    assert report.count(Outcome.FAILED) >= 1
    assert not report.complete
    assert all("403" in r.detail for r in report.results if r.outcome == Outcome.FAILED)
    assert graph.store.count() == before  # nothing deleted


def test_an_app_without_mail_permissions_cannot_read(graph):
    blind = connector_with(graph, ["User.Read.All"])
    with pytest.raises(SourceUnavailable, match="403 ErrorAccessDenied"):
        list(blind.discover(Subject.from_raw(["al@example.com"])))


def test_the_sandbox_token_carries_what_the_sandbox_needs():
    assert token_roles(SANDBOX_TOKEN) == frozenset({"Mail.ReadWrite", "User.Read.All", "Mail.Send"})
    assert token_roles("opaque-token") is None

"""Exchange Online's per-mailbox limits in the Graph emulator (4 requests in flight, 10,000 per
10 minutes: sandbox/emulators/graph/limits.py), and the mail connector under them: reads are
retried honouring Retry-After and lose nothing, a throttled write is sent again only because it
was refused before it ran, and a limit that does not lift fails the source loudly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors.base import SourceUnavailable
from connectors.mail.connector import MailConnector
from connectors.mail.mapping import MailMapping
from connectors.mail.settings import MailSource
from dsrflow.plan import Outcome
from dsrflow.request import Subject
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.graph.limits import CONCURRENCY_MESSAGE, RATE_MESSAGE
from sandbox.emulators.server import EmulatorServer
from tests.test_mail_connector import plan_for

REPO = Path(__file__).resolve().parents[1]
SUBJECT = "kim@example.com"
BUSY = "support@fjelltopp.example"
QUIET = "sales@fjelltopp.example"
AUTH = {"Authorization": "Bearer test-token"}
MESSAGES = 6  # the subject's messages in BUSY, each with an attachment


class Tenant:
    def __init__(self, url: str, app: Any, store: GraphStore, faults: Faults) -> None:
        self.url = url
        self.app = app
        self.store = store
        self.faults = faults
        self.opened: list[MailConnector] = []

    def limit(self, **settings: Any) -> None:
        answer = httpx.post(f"{self.url}/_emulator/graph-limits", json=settings)
        answer.raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_emulator/graph").json())

    def connector(self, **settings: Any) -> MailConnector:
        mapping = yaml.safe_load((REPO / "mappings" / "mail.yaml").read_text())
        source = MailSource(
            kind="mail", mapping=Path("mail.yaml"), base_url=f"{self.url}/v1.0", **settings
        )
        connector = MailConnector(
            "mail", MailMapping.model_validate(mapping), source, retry_delay_s=0.01
        )
        self.opened.append(connector)
        return connector


def _message(number: int) -> dict[str, Any]:
    sender = {"emailAddress": {"name": "Kim", "address": SUBJECT}}
    return {
        "subject": f"Question {number}",
        "from": sender,
        "sender": sender,
        "toRecipients": [{"emailAddress": {"name": "Support", "address": BUSY}}],
        "receivedDateTime": f"2026-03-{number + 1:02d}T09:00:00Z",
        "sentDateTime": f"2026-03-{number + 1:02d}T09:00:00Z",
        "body": {"contentType": "text", "content": "Hello"},
        "internetMessageId": f"<kim-{number}@mail.example.com>",
        "folder": "Inbox",
        "attachments": [
            {"name": f"log-{number}.txt", "contentType": "text/plain", "contentBytes": "eHh4"}
        ],
    }


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    store = GraphStore()
    for number in range(MESSAGES):
        store.add_message(BUSY, _message(number))
    store.add_mailbox(QUIET)
    faults = Faults()
    app = create_app(store, faults)
    with EmulatorServer(app, name="graph-throttling") as url:
        running = Tenant(url, app, store, faults)
        try:
            yield running
        finally:
            for connector in running.opened:
                connector.close()


def _found(connector: MailConnector) -> set[tuple[str, str]]:
    records = connector.discover(Subject.from_raw([SUBJECT]))
    return {(r.native_id["internetMessageId"], r.fields["attachments"][0]["name"]) for r in records}


def test_the_fifth_concurrent_request_to_one_mailbox_gets_429(tenant: Tenant) -> None:
    tenant.faults.settings = FaultSettings(latency_ms=1000)  # long enough to overlap

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=f"{tenant.url}/v1.0", headers=AUTH, timeout=30
        ) as client:
            busy = [client.get(f"/users/{BUSY}/messages", params={"$top": "1"}) for _ in range(5)]
            quiet = client.get(f"/users/{QUIET}/messages", params={"$top": "1"})
            return list(await asyncio.gather(*busy, quiet))

    answers = asyncio.run(burst())
    refused = [a for a in answers[:5] if a.status_code == 429]
    assert len(refused) == 1 and answers[5].status_code == 200  # per mailbox, not per app
    assert refused[0].headers["Retry-After"] == "1"
    error = refused[0].json()["error"]
    assert (error["code"], error["message"]) == ("ApplicationThrottled", CONCURRENCY_MESSAGE)
    assert tenant.stats()["mailbox_concurrency_refused"] == 1


def test_a_batch_item_counts_against_its_mailboxs_slots(tenant: Tenant) -> None:
    limits = tenant.app.state.limits
    for _ in range(4):  # four requests to BUSY in flight elsewhere
        assert limits.enter(BUSY) is None
    items = [
        {"id": "1", "method": "GET", "url": f"/users/{BUSY}/messages?$top=1"},
        {"id": "2", "method": "GET", "url": f"/users/{QUIET}/messages?$top=1"},
    ]
    answer = httpx.post(f"{tenant.url}/v1.0/$batch", json={"requests": items}, headers=AUTH)
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 429 and by_id["1"]["headers"]["Retry-After"] == "1"
    assert by_id["1"]["body"]["error"]["code"] == "ApplicationThrottled"
    assert by_id["2"]["status"] == 200
    for _ in range(4):
        limits.leave(BUSY)
    again = httpx.post(f"{tenant.url}/v1.0/$batch", json={"requests": items}, headers=AUTH)
    assert [r["status"] for r in again.json()["responses"]] == [200, 200]
    assert dict(limits.in_flight) == {BUSY.lower(): 0, QUIET.lower(): 0}  # every slot given back


def test_reads_throttled_by_mailbox_concurrency_are_retried_and_nothing_is_lost(
    tenant: Tenant,
) -> None:
    reference = _found(tenant.connector())
    assert len(reference) == MESSAGES
    # Two slots: the connector's four attachment reads at once meet 429s, which msgraph-sdk's
    # RetryHandler sends again after their Retry-After.
    tenant.limit(mailbox_concurrency=2)
    tenant.faults.settings = FaultSettings(latency_ms=200)
    throttled = tenant.connector(max_retries=5)
    assert _found(throttled) == reference
    assert tenant.stats()["mailbox_concurrency_refused"] >= 1


def test_a_throttled_write_is_sent_again_only_as_refused_and_applied_once(
    tenant: Tenant,
) -> None:
    finder = tenant.connector()
    records = list(finder.discover(Subject.from_raw([SUBJECT])))
    limits = tenant.app.state.limits
    for _ in range(4):  # BUSY's slots taken: every deletion item is refused (429)...
        assert limits.enter(BUSY) is None

    def release() -> None:
        for _ in range(4):
            limits.leave(BUSY)

    threading.Timer(1.5, release).start()  # ... until the other requests finish
    report = finder.erase(plan_for(records), Subject.from_raw([SUBJECT]))
    assert {r.outcome for r in report.results} == {Outcome.DONE}
    assert tenant.stats()["mailbox_concurrency_refused"] >= MESSAGES
    assert finder.stats.retries >= 1
    # Each message deleted once: none answered "already gone", none left.
    assert all("already" not in (r.detail or "") for r in report.results)
    assert tenant.store.count() == 0


def test_the_request_rate_limit_fails_the_source_with_a_clear_error(tenant: Tenant) -> None:
    tenant.limit(mailbox_requests=1, window_s=600)
    httpx.get(f"{tenant.url}/v1.0/users/{BUSY}/mailFolders", headers=AUTH).raise_for_status()
    over = httpx.get(f"{tenant.url}/v1.0/users/{BUSY}/mailFolders", headers=AUTH)
    assert over.status_code == 429 and over.json()["error"]["message"] == RATE_MESSAGE
    assert 590 <= int(over.headers["Retry-After"]) <= 600
    connector = tenant.connector(max_retries=3)
    expected = rf"mailbox {BUSY}: .*HTTP 429 ApplicationThrottled"
    with pytest.raises(SourceUnavailable, match=expected):
        _found(connector)
    assert connector.stats.retries == 0  # a 10-minute Retry-After is not waited for

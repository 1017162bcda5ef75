"""The Graph emulator over plain HTTP: the shapes, paging, state and errors of Graph v1.0."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox import mail_seed
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.server import EmulatorServer

FIXTURE = Path(__file__).parent / "fixtures" / "mail" / "mail.json"
SUPPORT = "support@fjelltopp.example"
SALES = "sales@fjelltopp.example"
AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture
def store() -> GraphStore:
    store = GraphStore()
    mail_seed.load_fixture(store, FIXTURE)
    return store


@pytest.fixture
def graph(store):
    faults = Faults()
    server = EmulatorServer(create_app(store, faults), name="graph-test")
    with server as url, httpx.Client(base_url=f"{url}/v1.0", headers=AUTH, timeout=10) as client:
        client.root = url
        client.faults = faults
        yield client


def search(client, mailbox, kql, **params):
    response = client.get(
        f"/users/{mailbox}/messages",
        params={"$search": f'"{kql}"', "$select": "id,internetMessageId", **params},
    )
    assert response.status_code == 200, response.text
    return response.json()


def ids_of(body):
    return {m["internetMessageId"].strip("<>").split("@")[0] for m in body["value"]}


def test_users_are_listed_and_paged_with_absolute_next_links(graph):
    first = graph.get("/users", params={"$top": 2, "$select": "id,mail"}).json()
    assert len(first["value"]) == 2
    assert set(first["value"][0]) == {"@odata.etag", "id", "mail"}
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(f"{graph.root}/v1.0/users?")
    second = graph.get(next_link).json()
    assert "@odata.nextLink" not in second
    mails = [u["mail"] for u in first["value"] + second["value"]]
    assert sorted(mails) == sorted([SUPPORT, SALES, "privacy@fjelltopp.example"])


def test_search_is_token_based_and_returns_near_misses(graph):
    body = search(graph, SUPPORT, 'participants:\\"al@example.com\\"')
    # Exchange-like: sal@ and al@…evil.org come back too; the connector must weed them out.
    # al+news@ does not: "news" sits between the phrase's tokens.
    assert ids_of(body) == {
        "sup-al-1",
        "sup-sal",
        "sup-evil",
        "sup-case",
        "quote-1",
        "sup-contract",
    }
    # Sorted by the time sent, newest first.
    assert body["value"][0]["internetMessageId"] == "<quote-1@example.com>"


def test_bare_search_covers_from_subject_and_body(graph):
    body = search(graph, SUPPORT, '\\"al@example.com\\"')
    hits = ids_of(body)
    assert {"sup-mention", "sup-mention-sal"} <= hits  # in the body only
    assert "sup-case" not in hits  # al@ only in cc: not a default search property
    both = search(graph, SUPPORT, 'participants:\\"al@example.com\\" OR \\"al@example.com\\"')
    assert ids_of(both) == hits | {"sup-case"}


def test_search_pages_follow_next_link_until_done(graph):
    seen = []
    url = f"/users/{SUPPORT}/messages"
    params = {"$search": '"participants:example"', "$top": "3", "$select": "id"}
    body = graph.get(url, params=params).json()
    pages = 1
    seen += [m["id"] for m in body["value"]]
    while "@odata.nextLink" in body:
        body = graph.get(body["@odata.nextLink"]).json()
        seen += [m["id"] for m in body["value"]]
        pages += 1
    assert len(seen) == len(set(seen)) == 11  # every message of the mailbox
    assert pages == 4


def test_filter_by_internet_message_id_with_or(graph):
    response = graph.get(
        f"/users/{SALES}/messages",
        params={
            "$filter": "internetMessageId eq '<quote-1@example.com>' or "
            "internetMessageId eq '<sal-bcc@mail.example.com>'",
            "$select": "internetMessageId,parentFolderId",
        },
    )
    assert response.status_code == 200
    assert ids_of(response.json()) == {"quote-1", "sal-bcc"}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"$search": '"al"', "$filter": "hasAttachments eq true"}, 400, "ErrorInvalidRequest"),
        ({"$top": "1001"}, 400, "ErrorInvalidRequest"),
        ({"$orderby": "subject"}, 400, "BadRequest"),
        ({"$select": "subject,nonsense"}, 400, "BadRequest"),
        ({"$filter": "subject eq 'x'"}, 400, "ErrorInvalidRequest"),
        ({"$search": '"participants:\\"unterminated"'}, 400, "ErrorInvalidRequest"),
        ({"$skiptoken": "%%%"}, 400, "ErrorInvalidRequest"),
    ],
)
def test_refused_query_options_use_graphs_error_shape(graph, params, status, code):
    response = graph.get(f"/users/{SUPPORT}/messages", params=params)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_unknown_routes_users_and_messages(graph):
    unknown_segment = graph.get(f"/users/{SUPPORT}/calendars")
    assert unknown_segment.status_code == 400
    assert unknown_segment.json()["error"]["code"] == "BadRequest"
    assert "calendars" in unknown_segment.json()["error"]["message"]
    no_user = graph.get("/users/nobody@fjelltopp.example/messages")
    assert no_user.status_code == 404
    assert no_user.json()["error"]["code"] == "ErrorInvalidUser"
    no_message = graph.get(f"/users/{SUPPORT}/messages/AAMkNOPE")
    assert no_message.status_code == 404
    assert no_message.json()["error"]["code"] == "ErrorItemNotFound"
    no_token = httpx.get(f"{graph.root}/v1.0/users")
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_attachments_listed_selected_and_expanded(graph):
    message = f"/users/{SUPPORT}/messages/sup-al-1"
    listed = graph.get(f"{message}/attachments", params={"$select": "name,size"}).json()["value"]
    assert [(a["name"], a["size"]) for a in listed] == [
        ("invoice.pdf", 33),
        ("screenshot.png", 4096),
    ]
    assert all("contentBytes" not in a for a in listed)
    assert listed[0]["@odata.type"] == "#microsoft.graph.fileAttachment"
    expanded = graph.get(message, params={"$expand": "attachments"}).json()
    assert expanded["hasAttachments"] is True
    assert expanded["attachments"][0]["contentBytes"].startswith("JVBERi0")  # %PDF


def test_delete_moves_to_deleted_items_with_a_new_id_and_permanent_delete_removes(graph, store):
    folders = graph.get(f"/users/{SUPPORT}/mailFolders").json()["value"]
    deleted_items = next(f["id"] for f in folders if f["displayName"] == "Deleted Items")
    assert graph.delete(f"/users/{SUPPORT}/messages/sup-sal").status_code == 204
    assert graph.get(f"/users/{SUPPORT}/messages/sup-sal").status_code == 404
    moved = graph.get(
        f"/users/{SUPPORT}/messages",
        params={"$filter": "internetMessageId eq '<sup-sal@mail.example.com>'"},
    ).json()["value"]
    assert len(moved) == 1
    assert moved[0]["parentFolderId"] == deleted_items
    assert moved[0]["id"] != "sup-sal"
    gone = graph.post(f"/users/{SUPPORT}/messages/{moved[0]['id']}/permanentDelete")
    assert gone.status_code == 204
    again = graph.post(f"/users/{SUPPORT}/messages/{moved[0]['id']}/permanentDelete")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "ErrorItemNotFound"
    assert store.count() == 13  # 14 in the fixture


def test_batch_answers_each_request_with_its_own_status(graph, store):
    requests = [
        {"id": "1", "method": "POST", "url": f"/users/{SUPPORT}/messages/sup-sal/permanentDelete"},
        {
            "id": "2",
            "method": "POST",
            "url": f"{graph.root}/v1.0/users/{SUPPORT}/messages/sup-evil/permanentDelete",
        },
        {"id": "3", "method": "DELETE", "url": f"/users/{SUPPORT}/messages/does-not-exist"},
        {"id": "4", "method": "GET", "url": f"/users/{SUPPORT}/messages/sup-plus?$select=subject"},
        {
            "id": "5",
            "method": "DELETE",
            "url": f"/users/{SUPPORT}/messages/sup-plus",
            "dependsOn": ["3"],
        },
        {"id": "6", "method": "GET", "url": f"/v1.0/users/{SUPPORT}/messages/sup-plus"},
        # msgraph-core's spelling: not Graph's, so no dependency (item 3 failed, this one runs).
        {
            "id": "7",
            "method": "GET",
            "url": f"users/{SUPPORT}/messages/sup-al-1",
            "depends_on": ["3"],
        },
    ]
    body = graph.post("/$batch", json={"requests": requests}).json()
    statuses = {r["id"]: r["status"] for r in body["responses"]}
    # An absolute (2) or versioned (6) item URL is refused per item, as Graph does.
    assert statuses == {"1": 204, "2": 400, "3": 404, "4": 200, "5": 424, "6": 400, "7": 200}
    by_id = {r["id"]: r for r in body["responses"]}
    assert by_id["2"]["body"]["error"]["code"] == "BadRequest"
    assert "Resource not found for the segment" in by_id["2"]["body"]["error"]["message"]
    assert by_id["6"]["body"]["error"]["message"].endswith("segment 'v1.0'.")
    assert by_id["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["4"]["body"]["subject"] == "Newsletter signup"
    assert store.count() == 13  # sup-sal only
    too_many = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    refused = graph.post("/$batch", json={"requests": too_many})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "BadRequest"


def test_throttling_answers_429_application_throttled_with_retry_after(graph):
    settings = FaultSettings(throttle_every=2, retry_after_s=7)
    assert graph.post(f"{graph.root}/_emulator/faults", json=settings.model_dump()).is_success
    statuses = [graph.get("/users").status_code for _ in range(4)]
    assert statuses == [200, 429, 200, 429]
    throttled = graph.get("/users")  # the 5th: served
    assert throttled.status_code == 200
    refused = graph.get("/users")
    assert refused.headers["Retry-After"] == "7"
    assert refused.json()["error"]["code"] == "ApplicationThrottled"
    stats = graph.get(f"{graph.root}/_emulator/stats").json()
    assert stats["requests"]["GET /users"] == 6


def test_more_than_four_requests_in_flight_for_a_mailbox_are_refused(graph):
    graph.faults.settings = FaultSettings(latency_ms=300)

    async def burst(n):
        async with httpx.AsyncClient(base_url=f"{graph.root}/v1.0", headers=AUTH) as client:
            responses = await asyncio.gather(
                *(client.get(f"/users/{SUPPORT}/messages", params={"$top": "1"}) for _ in range(n))
            )
        return [r for r in responses]

    four = asyncio.run(burst(4))
    assert [r.status_code for r in four] == [200] * 4
    six = asyncio.run(burst(6))
    refused = [r for r in six if r.status_code == 429]
    assert len(refused) == 2
    # Graph's code for every Exchange throttling answer; the message names the limit.
    assert refused[0].json()["error"]["code"] == "ApplicationThrottled"
    assert (
        refused[0].json()["error"]["message"] == "Application is over its MailboxConcurrency limit."
    )
    assert refused[0].headers["Retry-After"] == "1"


def test_child_folders_are_read_by_id_not_listed(graph, store):
    child = store.add_message(SUPPORT, {"subject": "Nested", "folder": "Inbox/Contracts"})
    listed = graph.get(f"/users/{SUPPORT}/mailFolders").json()["value"]
    names = [f["displayName"] for f in listed]
    assert names.count("Contracts") == 1  # the top-level one of the fixture, not the child
    inbox = next(f for f in listed if f["displayName"] == "Inbox")
    assert inbox["childFolderCount"] == 1
    folder = graph.get(f"/users/{SUPPORT}/mailFolders/{child['parentFolderId']}").json()
    assert folder["displayName"] == "Contracts"
    assert folder["parentFolderId"] == inbox["id"]
    missing = graph.get(f"/users/{SUPPORT}/mailFolders/AAMkNOPE")
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_fixture_folders_and_defaults(store):
    box = store.mailbox(SUPPORT)
    contract = box.messages["sup-contract"].resource
    assert box.folders[contract["parentFolderId"]].display_name == "Contracts"
    sent = store.mailbox(SALES).messages["sal-bcc"].resource
    assert store.mailbox(SALES).folders[sent["parentFolderId"]].well_known == "sentitems"
    assert box.messages["sup-al-1"].resource["hasAttachments"] is True
    assert box.messages["sup-sal"].resource["bodyPreview"] == "Please renew."


def test_fixture_format_errors_are_named(tmp_path):
    path = tmp_path / "mail.json"
    path.write_text(json.dumps({"support@x.example": []}))
    with pytest.raises(ValueError, match="mailboxes"):
        mail_seed.load_fixture(GraphStore(), path)


def test_generated_tenant_holds_the_demo_subject_and_look_alikes():
    store = GraphStore()
    counts = mail_seed.generate(store)
    assert counts["mailboxes"] == 6
    assert 300 <= counts["messages"] <= 1000
    senders = [s.resource["from"]["emailAddress"]["address"] for _, s in store.all_messages()]
    assert "kari.nordmann@example.com" in senders
    assert "Kari.Nordmann@Example.COM" in senders
    for look_alike in mail_seed.LOOK_ALIKES:
        assert look_alike in senders
    assert urlsplit(f"http://{mail_seed.TENANT}").hostname == "fjelltopp.example"

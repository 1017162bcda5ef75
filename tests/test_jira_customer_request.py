"""The Jira emulator's Create customer request (a customer raising a request as themselves) and
Get attachment content, over HTTP, and the intake reading the new request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.jira.client import JiraClient
from connectors.jira.intake import privacy_requests
from connectors.jira.settings import JiraSource
from sandbox import jira_seed
from sandbox.emulators.jira import JiraEmulator, JiraStore
from sandbox.emulators.server import EmulatorServer

ADMIN = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
KARI = ("kari.nordmann@example.com", jira_seed.DEMO_CUSTOMER_TOKEN)
PRIVACY = jira_seed.PRIVACY_REQUEST_TYPE


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, JiraStore]]:
    store = JiraStore()
    jira_seed.generate(store, requests=20)
    with EmulatorServer(JiraEmulator(store).app, name="jira") as url:
        yield url, store


def privacy_type(store: JiraStore) -> str:
    type_id = store.request_type_id(jira_seed.PROJECT, PRIVACY)
    assert type_id is not None
    return type_id


def raise_request(url: str, auth: tuple[str, str], type_id: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{url}/rest/servicedeskapi/request",
        auth=auth,
        json={
            "serviceDeskId": jira_seed.DESK_ID,
            "requestTypeId": type_id,
            "requestFieldValues": {"summary": "Innsyn", "description": "A copy of my data."},
            **extra,
        },
    )


def test_a_customer_raises_a_request_as_themselves(site, monkeypatch):
    url, store = site
    response = raise_request(url, KARI, privacy_type(store))
    assert response.status_code == 201, response.text
    created = response.json()
    issue = store.issue(created["issueKey"])
    assert issue is not None
    kari = next(u for u in store.users.values() if u.email == "Kari.Nordmann@Example.COM")
    assert issue.reporter == kari.account_id
    assert created["reporter"]["accountId"] == kari.account_id
    assert created["requestTypeId"] == privacy_type(store)
    assert issue.participants == []

    # The intake (the site admin's credential) reads it as any other privacy request.
    monkeypatch.setenv("CUSTOMER_REQUEST_TEST_TOKEN", ADMIN[1])
    source = JiraSource.model_validate(
        {
            "kind": "jira",
            "url": url,
            "mapping": "mappings/jira.yaml",
            "email": ADMIN[0],
            "api_token": {"env": "CUSTOMER_REQUEST_TEST_TOKEN"},
        }
    )
    client = JiraClient("jira", source)
    try:
        read = {i.reference: i for i in privacy_requests(client, jira_seed.PROJECT, PRIVACY)}
    finally:
        client.close()
    assert read[created["issueKey"]].requester_email == "Kari.Nordmann@Example.COM"
    assert read[created["issueKey"]].requester_account == kari.account_id


def test_a_customer_cannot_raise_for_someone_else_nor_add_participants(site):
    url, store = site
    other = store.servicedesks[jira_seed.DESK_ID].customers[0]
    before = len(store.issues)
    for extra in ({"raiseOnBehalfOf": other}, {"requestParticipants": [other]}):
        refused = raise_request(url, KARI, privacy_type(store), **extra)
        assert refused.status_code == 403, refused.text
        assert "not available to customers" in refused.json()["errorMessage"]
    assert len(store.issues) == before


def test_an_agent_raises_on_behalf_of_a_customer(site):
    url, store = site
    customer = store.servicedesks[jira_seed.DESK_ID].customers[0]
    response = raise_request(url, ADMIN, privacy_type(store), raiseOnBehalfOf=customer)
    assert response.status_code == 201, response.text
    issue = store.issue(response.json()["issueKey"])
    assert issue is not None and issue.reporter == customer


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"serviceDeskId": "99"}, 404, "service desk does not exist"),
        ({"requestTypeId": "999999"}, 404, "request type does not exist"),
        ({"requestFieldValues": {"description": "no summary"}}, 400, "summary"),
        ({"requestFieldValues": {"summary": "x", "priority": "High"}}, 400, "priority"),
        ({"bogus": 1}, 400, "bogus"),
    ],
)
def test_bad_requests_are_refused_as_service_management_does(site, change, status, message):
    url, store = site
    before = len(store.issues)
    body = {
        "serviceDeskId": jira_seed.DESK_ID,
        "requestTypeId": privacy_type(store),
        "requestFieldValues": {"summary": "s"},
        **change,
    }
    response = httpx.post(f"{url}/rest/servicedeskapi/request", auth=KARI, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["errorMessage"]
    assert len(store.issues) == before


def test_a_wrong_customer_token_is_refused(site):
    url, store = site
    wrong = raise_request(url, (KARI[0], "not-her-token"), privacy_type(store))
    assert wrong.status_code == 401


def test_attachment_content_redirects_to_the_file_or_answers_it(site):
    url, store = site
    temporary = httpx.post(
        f"{url}/rest/servicedeskapi/servicedesk/{jira_seed.DESK_ID}/attachTemporaryFile",
        auth=ADMIN,
        headers={"X-Atlassian-Token": "no-check"},
        files={"file": ("a.zip", b"PK\x03\x04 bytes", "application/zip")},
    ).json()["temporaryAttachments"][0]["temporaryAttachmentId"]
    key = next(iter(store.issues))
    attached = httpx.post(
        f"{url}/rest/servicedeskapi/request/{key}/attachment",
        auth=ADMIN,
        json={"temporaryAttachmentIds": [temporary], "public": True},
    )
    assert attached.status_code == 201, attached.text
    attachment = httpx.get(
        f"{url}/rest/api/2/issue/{key}", auth=ADMIN, params={"fields": "attachment"}
    ).json()["fields"]["attachment"][-1]

    content = f"{url}/rest/api/2/attachment/content/{attachment['id']}"
    redirect = httpx.get(content, auth=ADMIN)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == attachment["content"]
    assert httpx.get(content, auth=ADMIN, follow_redirects=True).content == b"PK\x03\x04 bytes"
    direct = httpx.get(content, auth=ADMIN, params={"redirect": "false"})
    assert direct.content == b"PK\x03\x04 bytes"
    assert httpx.get(f"{url}/rest/api/2/attachment/content/1", auth=ADMIN).status_code == 404

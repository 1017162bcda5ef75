"""The Jira emulator over HTTP: shapes, JQL, paging, state, errors and faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox import jira_seed
from sandbox.emulators.jira import JiraEmulator, JiraStore, jql
from sandbox.emulators.server import EmulatorServer
from sandbox.jira_part import start_jira
from sandbox.runtime import SandboxContext
from tests.conftest import FIXTURES

AUTH = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)


@pytest.fixture
def store() -> JiraStore:
    store = JiraStore()
    jira_seed.load_fixture(store, FIXTURES / "jira" / "jira.json")
    store.credentials = AUTH
    return store


@pytest.fixture
def api(store: JiraStore) -> Iterator[httpx.Client]:
    with (
        EmulatorServer(JiraEmulator(store).app, name="jira") as url,
        httpx.Client(base_url=url, auth=AUTH) as client,
    ):
        yield client


def search(api: httpx.Client, query: str, **params: object) -> list[str]:
    response = api.get("/rest/api/2/search/jql", params={"jql": query, **params})
    assert response.status_code == 200, response.text
    return [i["key"] for i in response.json()["issues"]]


def test_server_info_says_cloud_and_links_are_absolute(api: httpx.Client) -> None:
    info = api.get("/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Cloud"
    assert info["baseUrl"] == str(api.base_url).rstrip("/")
    issue = api.get("/rest/api/2/issue/SUP-1").json()
    assert issue["self"].startswith(str(api.base_url).rstrip("/") + "/rest/api/2/issue/")
    comment = issue["fields"]["comment"]["comments"][0]
    assert api.get(comment["self"]).json()["body"] == comment["body"]
    assert issue["fields"]["reporter"]["emailAddress"] == "AL@Example.COM"
    assert [p["accountId"] for p in issue["fields"]["customfield_10027"]] == []


def test_errors_have_jiras_shapes(api: httpx.Client, store: JiraStore) -> None:
    anonymous = httpx.get(f"{api.base_url}/rest/api/2/serverInfo")
    assert anonymous.status_code == 401
    assert anonymous.json()["errorMessages"] == [
        "Client must be authenticated to access this resource."
    ]
    wrong = httpx.get(
        f"{api.base_url}/rest/api/2/serverInfo", auth=(jira_seed.SANDBOX_EMAIL, "nope")
    )
    assert wrong.status_code == 401
    missing = api.get("/rest/api/2/issue/SUP-999")
    assert missing.status_code == 404
    assert missing.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }
    assert api.get("/rest/api/2/nothing").json()["errorMessages"][0].startswith("null for uri:")
    assert (
        api.get("/rest/api/2/search/jql", params={"jql": "key = SUP-1", "bogus": "1"}).status_code
        == 400
    )
    desk = api.get("/rest/servicedeskapi/servicedesk/99/customer")
    assert (
        desk.status_code == 404
        and desk.json()["errorMessage"] == "The service desk does not exist."
    )
    bad_field = api.put("/rest/api/2/issue/SUP-1", json={"fields": {"priority": {"name": "High"}}})
    assert bad_field.status_code == 400 and "priority" in bad_field.json()["errors"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("project > SUP", "the operator '>' is not supported"),
        ("assignee = bob", "Field 'assignee' does not exist"),
        ('summary ~ "unterminated', "has not been completed"),
        ('summary ~ "bad \\q escape"', "illegal JQL escape sequence"),
        ('text ~ "a[b"', "is not valid: probably your query syntax is invalid"),
        ("reporter = u-al OR", "Expecting more input"),
        ("(reporter = u-al", "Expecting ')'"),
        ("issue in linkedIssues(SUP-1)", "Unable to find JQL function 'linkedIssues'"),
        ("summary = x", "The operator '=' is not supported by the 'summary' field."),
        ("ORDER BY key", "Unbounded JQL queries are not allowed here."),
    ],
)
def test_jql_outside_the_subset_is_a_400(api: httpx.Client, query: str, message: str) -> None:
    response = api.get("/rest/api/2/search/jql", params={"jql": query})
    assert response.status_code == 400
    assert message in response.json()["errorMessages"][0]


def test_jql_operators_and_precedence(api: httpx.Client) -> None:
    assert search(api, 'reporter = "u-al" ORDER BY key') == ["OPS-1", "SUP-1", "SUP-8"]
    assert search(api, 'project = SUP AND reporter in ("u-al", "u-sal") ORDER BY key DESC') == [
        "SUP-8",
        "SUP-3",
        "SUP-1",
    ]
    assert search(api, "project != SUP") == ["OPS-1"]
    assert search(api, '"Request participants" in (u-al) ORDER BY key') == ["SUP-2"]
    # AND binds tighter than OR; parentheses change it.
    assert search(api, "reporter = u-sal OR reporter = u-al AND project = OPS ORDER BY key") == [
        "OPS-1",
        "SUP-3",
    ]
    assert search(api, "(reporter = u-sal OR reporter = u-al) AND project = OPS") == ["OPS-1"]
    assert search(api, "issue in updatedBy(u-al) AND project = SUP ORDER BY key") == [
        "SUP-1",
        "SUP-3",
        "SUP-8",
    ]
    assert search(api, 'reporter = "acc\\"quote\\\\back"') == ["SUP-10"]


def test_text_search_is_fuzzy_like_jiras(api: httpx.Client) -> None:
    # Stems and case: "EXPORTS" finds "Export fails".
    assert search(api, 'summary ~ "EXPORTS"') == ["SUP-1"]
    # An address is cut into words: look-alikes come back too, and callers must confirm.
    hits = search(api, 'text ~ "al@example.com" ORDER BY key')
    assert {"SUP-1", "SUP-4", "SUP-5", "SUP-7", "SUP-11"} <= set(hits)
    assert search(api, 'comment ~ "bob"') == ["SUP-1"]
    assert jql.words("Exporting EXPORTS exported") == {"export"}


def test_enhanced_search_pages_with_tokens_and_classic_search_with_start_at(
    api: httpx.Client,
) -> None:
    keys: list[str] = []
    params: dict[str, object] = {"jql": "project = SUP ORDER BY key", "maxResults": 4}
    pages = 0
    while True:
        body = api.get("/rest/api/2/search/jql", params=params).json()
        pages += 1
        keys += [i["key"] for i in body["issues"]]
        assert "total" not in body
        if "nextPageToken" not in body:
            # The last page has no token and no ``isLast`` (optional in Cloud's schema).
            assert "isLast" not in body
            break
        assert body["isLast"] is False  # a full page that is not the last
        params["nextPageToken"] = body["nextPageToken"]
    assert pages == 3 and keys == [f"SUP-{n}" for n in range(1, 12)]
    assert (
        api.get(
            "/rest/api/2/search/jql", params={"jql": "key = SUP-1", "nextPageToken": "x!"}
        ).status_code
        == 400
    )
    classic = api.get(
        "/rest/api/2/search",
        params={"jql": "project = SUP ORDER BY key", "startAt": 8, "maxResults": 5},
    ).json()
    assert (classic["total"], classic["startAt"], [i["key"] for i in classic["issues"]]) == (
        11,
        8,
        ["SUP-9", "SUP-10", "SUP-11"],
    )
    # Enhanced search returns ids only unless fields are asked for.
    only_ids = api.get("/rest/api/2/search/jql", params={"jql": "key = SUP-1"}).json()["issues"][0]
    assert "fields" not in only_ids and only_ids["key"] == "SUP-1"
    some = api.get(
        "/rest/api/2/search/jql", params={"jql": "key = SUP-1", "fields": "summary,status"}
    ).json()
    assert set(some["issues"][0]["fields"]) == {"summary", "status"}


def test_state_changes_are_visible_to_the_next_request(api: httpx.Client, store: JiraStore) -> None:
    assert api.delete("/rest/api/2/issue/SUP-8").status_code == 204
    assert api.get("/rest/api/2/issue/SUP-8").status_code == 404
    assert search(api, "reporter = u-al AND project = SUP") == ["SUP-1"]

    created = api.post("/rest/api/2/issue/SUP-4/comment", json={"body": "On it."})
    assert created.status_code == 201
    comment = created.json()
    assert comment["author"]["emailAddress"] == jira_seed.SANDBOX_EMAIL
    assert api.put(comment["self"], json={"body": "Done."}).json()["body"] == "Done."
    listing = api.get("/rest/api/2/issue/SUP-4/comment").json()
    assert (listing["total"], listing["comments"][-1]["body"]) == (1, "Done.")
    assert search(api, 'comment ~ "done"') == ["SUP-4"]
    assert api.delete(comment["self"]).status_code == 204
    assert api.get(comment["self"]).status_code == 404

    assert (
        api.put(
            "/rest/api/2/issue/SUP-1", json={"update": {"labels": [{"add": "gdpr-restricted"}]}}
        ).status_code
        == 204
    )
    assert search(api, "labels = gdpr-restricted") == ["SUP-1"]

    customers = api.get(
        "/rest/servicedeskapi/servicedesk/1/customer", params={"query": "al@example.com"}
    ).json()
    # A substring filter: look-alikes come back too.
    assert {c["accountId"] for c in customers["values"]} == {"u-al", "u-evil", "u-sal"}
    gone = api.request(
        "DELETE", "/rest/servicedeskapi/servicedesk/1/customer", json={"accountIds": ["u-al"]}
    )
    assert gone.status_code == 204
    customers = api.get(
        "/rest/servicedeskapi/servicedesk/1/customer", params={"query": "al@example.com"}
    ).json()
    assert {c["accountId"] for c in customers["values"]} == {"u-evil", "u-sal"}

    left = api.request(
        "DELETE", "/rest/servicedeskapi/request/SUP-2/participant", json={"accountIds": ["u-al"]}
    )
    assert [p["accountId"] for p in left.json()["values"]] == ["u-sal"]
    assert search(api, '"Request participants" = u-al') == []


def test_user_search_is_a_prefix_search(api: httpx.Client) -> None:
    found = api.get("/rest/api/2/user/search", params={"query": "al@example.com"}).json()
    assert {u["accountId"] for u in found} == {"u-al", "u-evil"}
    assert api.get("/rest/api/2/user/search").status_code == 400
    assert [
        u["accountId"] for u in api.get("/rest/api/2/user/search", params={"query": "bob"}).json()
    ] == ["u-bob"]


def test_throttling_latency_failures_and_counters(api: httpx.Client) -> None:
    api.post("/_emulator/faults", json={"throttle_every": 2, "retry_after_s": 3})
    api.post("/_emulator/reset-stats")
    assert api.get("/rest/api/2/issue/SUP-1").status_code == 200
    throttled = api.get("/rest/api/2/issue/SUP-2")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["errorMessages"] == ["Too many requests"]
    api.post(
        "/_emulator/faults", json={"fail_path": "/comment$", "fail_status": 503, "fail_count": 1}
    )
    assert api.get("/rest/api/2/issue/SUP-1/comment").status_code == 503
    assert api.get("/rest/api/2/issue/SUP-1/comment").status_code == 200
    stats = api.get("/_emulator/stats").json()
    assert stats["requests"] == {"GET issue/{key}": 2, "GET issue/{key}/comment": 2}


def test_sandbox_part_serves_generated_data(tmp_path) -> None:
    part = start_jira(SandboxContext(directory=tmp_path))
    try:
        source = part.sources["jira"]
        assert source["kind"] == "jira"
        token_file = tmp_path / "secrets" / "jira-api-token"
        assert source["api_token"] == {"file": str(token_file)}
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert part.counts["jira.issues"] >= 300
        with httpx.Client(base_url=source["url"], auth=AUTH) as client:
            hits = client.get(
                "/rest/api/2/search/jql",
                params={
                    "jql": 'reporter in ("x") OR text ~ "kari.nordmann@example.com"',
                    "maxResults": 100,
                },
            ).json()
            assert len(hits["issues"]) >= 5
    finally:
        part.stop()


def test_fixture_directory_without_jira_json_gives_an_empty_site(tmp_path) -> None:
    part = start_jira(SandboxContext(directory=tmp_path, fixtures=tmp_path))
    try:
        assert part.counts["jira.issues"] == 0
    finally:
        part.stop()


def test_a_hidden_address_is_left_out_and_found_only_by_an_exact_match(
    api: httpx.Client, store: JiraStore
) -> None:
    store.add_user("u-hid", "Hidden.Person@example.com", "Hidden Person", email_visible=False)
    store.add_user("qm:hid", "portal.hidden@example.com", "Portal Hidden", email_visible=False)
    store.servicedesks["1"].customers += ["u-hid", "qm:hid"]
    found = api.get("/rest/api/2/user/search", params={"query": "hidden.person@example.com"})
    assert [(u["accountId"], "emailAddress" in u) for u in found.json()] == [("u-hid", False)]
    # A prefix of a hidden address finds nobody.
    assert api.get("/rest/api/2/user/search", params={"query": "hidden.person@"}).json() == []
    assert "emailAddress" not in api.get("/rest/api/2/user", params={"accountId": "u-hid"}).json()
    # The service desk's customer list shows a portal-only customer's address to agents.
    listed = api.get(
        "/rest/servicedeskapi/servicedesk/1/customer", params={"query": "portal.hidden@"}
    ).json()["values"]
    assert [(c["accountId"], c.get("emailAddress")) for c in listed] == [
        ("qm:hid", "portal.hidden@example.com")
    ]
    # Without Browse users and groups the search is empty, not refused.
    store.denied_permissions.add("USER_PICKER")
    assert api.get("/rest/api/2/user/search", params={"query": "al@example.com"}).json() == []


def test_an_edit_keeps_the_old_values_in_the_changelog(api: httpx.Client) -> None:
    before = api.get("/rest/api/2/issue/SUP-1").json()["fields"]["summary"]
    assert api.put("/rest/api/2/issue/SUP-1", json={"fields": {"summary": "Renamed"}}).is_success
    log = api.get("/rest/api/2/issue/SUP-1/changelog").json()
    assert (log["total"], log["isLast"]) == (1, True)
    item = log["values"][-1]["items"][0]
    assert (item["field"], item["fromString"], item["toString"]) == ("summary", before, "Renamed")
    inline = api.get("/rest/api/2/issue/SUP-1", params={"expand": "changelog"}).json()
    assert inline["changelog"]["histories"][0]["items"][0]["fromString"] == before
    # An edit that changes nothing adds no entry.
    api.put("/rest/api/2/issue/SUP-1", json={"fields": {"summary": "Renamed"}})
    assert api.get("/rest/api/2/issue/SUP-1/changelog").json()["total"] == 1


def test_an_issue_with_subtasks_is_deleted_only_with_delete_subtasks(
    api: httpx.Client, store: JiraStore
) -> None:
    store.add_issue("SUP-90", {"summary": "Subtask", "parent": {"key": "SUP-2"}})
    parent = api.get("/rest/api/2/issue/SUP-2").json()["fields"]
    assert [s["key"] for s in parent["subtasks"]] == ["SUP-90"]
    assert api.get("/rest/api/2/issue/SUP-90").json()["fields"]["parent"]["key"] == "SUP-2"
    refused = api.delete("/rest/api/2/issue/SUP-2")
    assert refused.status_code == 400 and refused.json()["errorMessages"]
    assert store.issue("SUP-2") is not None
    assert api.delete("/rest/api/2/issue/SUP-2", params={"deleteSubtasks": "true"}).is_success
    assert store.issue("SUP-2") is None and store.issue("SUP-90") is None


def test_deleting_a_user_leaves_the_account(api: httpx.Client, store: JiraStore) -> None:
    assert api.delete("/rest/api/2/user", params={"accountId": "u-bob"}).status_code == 204
    assert "u-bob" not in store.users and "u-bob" in store.accounts

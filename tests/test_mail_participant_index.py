"""Mail that names the subject only as ``sender`` or ``replyTo`` (fields KQL's ``participants``
does not cover): found through the participant index that Graph delta queries keep, without
reading every mailbox on every request, and gone from the index once the mail is erased."""

from __future__ import annotations

import stat

import httpx

from connectors.mail.index import ParticipantIndex
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject

SUPPORT = "support@fjelltopp.example"
SALES = "sales@fjelltopp.example"
AUTH = {"Authorization": "Bearer t"}


def person(address):
    return {"emailAddress": {"address": address}}


def add_hidden_mail(graph):
    """Two messages naming kari@ only where KQL's participants does not look."""
    graph.store.add_message(
        SUPPORT,
        {
            "subject": "Sent for a colleague",
            "from": person("boss@customer.example"),
            "sender": person("Kari@Example.com"),  # a delegate sending on behalf
            "toRecipients": [person(SUPPORT)],
            "receivedDateTime": "2026-02-01T10:00:00Z",
            "internetMessageId": "<hidden-sender@example.com>",
        },
    )
    graph.store.add_message(
        SALES,
        {
            "subject": "Newsletter",
            "from": person("news@vendor.example"),
            "replyTo": [person("kari@example.com")],
            "toRecipients": [person(SALES)],
            "receivedDateTime": "2026-02-02T10:00:00Z",
            "internetMessageId": "<hidden-reply-to@example.com>",
            "folder": "Inbox/Leads",
        },
    )
    graph.store.add_message(
        SALES,
        {
            "subject": "Look-alike",
            "from": person("news@vendor.example"),
            "replyTo": [person("skari@example.com")],
            "toRecipients": [person(SALES)],
            "internetMessageId": "<look-alike@example.com>",
        },
    )


def ids(records):
    return {r.native_id["internetMessageId"] for r in records}


def test_emulator_delta_rounds_report_new_and_removed_mail(graph):
    url = f"{graph.url}/v1.0/users/{SUPPORT}/mailFolders/inbox/messages/delta()"
    first = httpx.get(url, params={"$select": "sender,replyTo"}, headers=AUTH).json()
    assert first["value"] and "@odata.deltaLink" in first
    assert set(first["value"][0]) <= {"id", "sender", "replyTo", "@odata.etag"}
    again = httpx.get(first["@odata.deltaLink"], headers=AUTH).json()
    assert again["value"] == []
    gone = first["value"][0]["id"]
    assert (
        httpx.post(
            f"{graph.url}/v1.0/users/{SUPPORT}/messages/{gone}/permanentDelete", headers=AUTH
        ).status_code
        == 204
    )
    third = httpx.get(again["@odata.deltaLink"], headers=AUTH).json()
    assert third["value"] == [
        {"@odata.type": "#microsoft.graph.message", "id": gone, "@removed": {"reason": "deleted"}}
    ]


def test_sender_and_reply_to_found_through_the_index(graph, tmp_path):
    add_hidden_mail(graph)
    # A user without an Exchange Online mailbox: no folders to index, skipped and named.
    graph.store.add_user_without_mailbox("onprem@fjelltopp.example", user_type="Member")
    path = tmp_path / "index" / "participants.sqlite"
    plain = graph.connector(matching__mentions=False)
    assert not ids(plain.discover(Subject.from_raw(["kari@example.com"])))  # KQL cannot see them
    indexed = graph.connector(matching={"mentions": False, "participant_index": str(path)})
    records = list(indexed.discover(Subject.from_raw(["kari@example.com"])))
    assert ids(records) == {"<hidden-sender@example.com>", "<hidden-reply-to@example.com>"}
    assert {r.reached_via for r in records} == {"named as sender or reply-to (participant index)"}
    assert list(indexed.unsearchable) == ["onprem@fjelltopp.example"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"kari@example.com" not in path.read_bytes()  # keyed hashes, not addresses
    # A second request reads only what changed since: one new message, no full scan.
    graph.store.add_message(
        SUPPORT,
        {
            "subject": "Another",
            "from": person("boss@customer.example"),
            "sender": person("kari@example.com"),
            "internetMessageId": "<hidden-later@example.com>",
        },
    )
    again = graph.connector(matching={"mentions": False, "participant_index": str(path)})
    later = list(again.discover(Subject.from_raw(["kari@example.com"])))
    assert again.stats.index_changes == 1
    assert "<hidden-later@example.com>" in ids(later)


def test_erasure_removes_the_mail_and_its_index_entries(graph, tmp_path):
    add_hidden_mail(graph)
    path = tmp_path / "participants.sqlite"
    mapping = {"mentions": False, "participant_index": str(path)}
    connector = graph.connector(matching=mapping)
    records = list(connector.discover(Subject.from_raw(["kari@example.com"])))
    actions = [
        PlannedAction(
            record_id=r.record_id,
            source=r.source,
            location=r.location,
            native_id=r.native_id,
            action=Action.DELETE,
        )
        for r in records
    ]
    report = connector.erase(actions, Subject.from_raw(["kari@example.com"]))
    assert {r.outcome for r in report.results} == {Outcome.DONE}
    index = ParticipantIndex(path)
    try:
        assert index.lookup(["kari@example.com"]) == {}
        assert index.lookup(["skari@example.com"])  # the look-alike's mail stays indexed
    finally:
        index.close()
    verify = graph.connector(matching=mapping)
    assert not list(verify.discover(Subject.from_raw(["kari@example.com"])))

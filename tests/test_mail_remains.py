"""What Exchange still keeps after the connector's erasure, said on the result (and so on the
receipt): permanentDelete leaves the item in Recoverable Items (Purges), a DELETE in Deleted
Items; a mailbox Graph cannot search (a guest, a mailbox on premises) is skipped and named."""

from __future__ import annotations

import httpx

from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings

SUPPORT = "support@fjelltopp.example"
SALES = "sales@fjelltopp.example"
GUEST = "al_example.com#EXT#@fjelltopp.example"
HYBRID = "onprem@fjelltopp.example"
AL = Subject.from_raw(["al@example.com"])


def discover(connector, *emails):
    return list(connector.discover(Subject.from_raw(list(emails))))


def plan_for(records):
    by_id = {r.native_id["internetMessageId"]: r for r in records}
    return [
        PlannedAction(
            record_id=r.record_id,
            source=r.source,
            location=r.location,
            native_id=r.native_id,
            action=Action.DELETE,
        )
        for r in by_id.values()
    ]


def emulator(graph):
    return httpx.get(f"{graph.url}/_emulator/graph").json()


def test_permanent_delete_leaves_purges_and_the_result_says_so(graph):
    connector = graph.connector(matching__mentions=False)
    records = [r for r in discover(connector, "al@example.com") if "quote-1" in str(r.native_id)]
    report = connector.erase(plan_for(records), AL)
    [result] = report.results
    assert result.outcome == Outcome.DONE
    # Both copies are out of every folder but still in the mailboxes' Recoverable Items.
    assert emulator(graph)["recoverable_items"] == {"Purges": 2}
    assert result.remains is not None
    assert "2 copy/copies in Recoverable Items (Purges)" in result.remains
    assert f"{SALES}, {SUPPORT}" in result.remains
    assert "compliance administrator" in result.remains and "hold" in result.remains
    # Verification: the re-discovery does not see the purged copies (nothing left to fail on).
    again = discover(graph.connector(matching__mentions=False), "al@example.com")
    assert not [r for r in again if "quote-1" in str(r.native_id)]
    # A second run has nothing left to delete and claims no remains of its own.
    [second] = graph.connector(matching__mentions=False).erase(plan_for(records), AL).results
    assert second.outcome == Outcome.ALREADY_DONE
    assert second.remains is None


def test_delete_mode_says_deleted_items(graph):
    connector = graph.connector(erasure={"mode": "delete"}, matching__mentions=False)
    records = [r for r in discover(connector, "al@example.com") if "sup-al-1" in str(r.native_id)]
    [result] = connector.erase(plan_for(records), AL).results
    assert result.outcome == Outcome.DONE
    assert result.remains.startswith(f"1 copy/copies in Deleted Items of {SUPPORT}")
    assert emulator(graph)["recoverable_items"] == {}
    # Deleted again from Deleted Items: now in Recoverable Items (Deletions), and said so.
    again = graph.connector(erasure={"mode": "delete"}, matching__mentions=False)
    moved = [r for r in discover(again, "al@example.com") if "sup-al-1" in str(r.native_id)]
    [second] = again.erase(plan_for(moved), AL).results
    assert second.outcome == Outcome.DONE
    assert second.remains.startswith(f"1 copy/copies in Recoverable Items of {SUPPORT}")
    assert emulator(graph)["recoverable_items"] == {"Deletions": 1}


def test_mailbox_less_users_are_skipped_and_named(graph):
    # A guest's mail attribute is their own address; Graph addresses users by id or UPN.
    graph.store.add_user_without_mailbox(GUEST, mail="al.guest@partner.example")
    graph.store.add_user_without_mailbox(HYBRID, user_type="Member")
    raw = httpx.get(
        f"{graph.url}/v1.0/users/{HYBRID}/messages", headers={"Authorization": "Bearer t"}
    )
    assert raw.status_code == 404
    assert raw.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    connector = graph.connector(matching__mentions=False)
    records = discover(connector, "al@example.com")
    # The rest of the tenant is still searched; the two users are noted, not dropped.
    assert len({r.native_id["internetMessageId"] for r in records}) == 5
    assert set(connector.unsearchable) == {GUEST, HYBRID}
    note = connector.unsearchable_note()
    # Named masked: the subject reads it, and these are other people's addresses.
    assert "a***@fjelltopp.example" in note and "o***@fjelltopp.example" in note
    assert GUEST not in note and HYBRID not in note and "MailboxNotEnabledForRESTAPI" in note
    assert connector.not_searched == [note]
    # An erasure by a fresh connector looks in every mailbox, skips the two, and says so.
    fresh = graph.connector(matching__mentions=False)
    report = fresh.erase(plan_for(records), AL)
    assert {r.outcome for r in report.results} == {Outcome.DONE, Outcome.SKIPPED}
    for result in report.results:
        assert result.remains is not None
        assert "2 mailbox(es) could not be searched" in result.remains


def test_named_mailbox_less_user_is_skipped_too(graph):
    graph.store.add_user_without_mailbox(HYBRID, user_type="Member")
    connector = graph.connector(mailboxes={"addresses": [SALES, HYBRID]})
    records = discover(connector, "al@example.com")
    # sales' mail of al@ is still found (as without the hybrid user).
    assert {r.native_id["internetMessageId"].strip("<>").split("@")[0] for r in records} == {
        "quote-1",
        "sal-bcc",
    }
    assert list(connector.unsearchable) == [HYBRID]


def test_the_access_export_says_which_mailboxes_were_not_searched(
    graph, tmp_path, sandbox_sqlite_url, prefect_harness
):
    import json
    from pathlib import Path

    from flows.access import access_request
    from sandbox.mail_part import mail_source
    from sandbox.runtime import onprem_source, write_config

    graph.store.add_user_without_mailbox(HYBRID, user_type="Member")
    config = tmp_path / "dsrflow.yaml"
    write_config(
        config, onprem_source(sandbox_sqlite_url) | mail_source(graph.url), tmp_path / "exports"
    )
    with run_settings(config, tmp_path / "out"):
        state = access_request(
            request_id="DSR-2026-0044",
            subject_emails=["al@example.com"],
            return_state=True,
        )
    assert state.is_completed(), state.message
    directory = Path(state.result().export_dir)
    document = json.loads((directory / "export.json").read_text())
    [note] = document["not_searched"]["mail"]
    assert note.startswith("1 mailbox(es) could not be searched")
    assert "o***@fjelltopp.example" in note and HYBRID not in note
    assert "o***@fjelltopp.example" in (directory / "export.html").read_text()
    assert document["records"]["mail"]  # the other mailboxes' mail is still there

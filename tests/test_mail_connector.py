"""The mail connector: the real msgraph-sdk over real HTTP against the sandbox's Graph emulator."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
import yaml

from connectors.base import Capability, SourceUnavailable, capabilities
from connectors.mail.match import Matcher, body_text, graph_search_value, search_expression
from connectors.mail.settings import MailSource
from dsrflow.mapping import MappingError, parse_mapping
from dsrflow.merge import merge, records_frame
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox.emulators.faults import FaultSettings
from tests.support.graph import BASE_MAPPING, FIXTURE

SUPPORT = "support@fjelltopp.example"
SALES = "sales@fjelltopp.example"
PRIVACY = "privacy@fjelltopp.example"

# What the fixture holds for al@example.com: as a participant, and as a mention only.
AL_PARTICIPANT = {"sup-al-1", "sup-case", "quote-1", "sup-contract", "sal-bcc"}
AL_MENTION = {"sup-mention"}
AL = Subject.from_raw(["al@example.com"])
SAL = Subject.from_raw(["sal@example.com"])


def short_ids(records):
    return {r.native_id["internetMessageId"].strip("<>").split("@")[0] for r in records}


def discover(connector, *emails):
    return list(connector.discover(Subject.from_raw(list(emails))))


# -- discovery ---------------------------------------------------------------------------------


def test_participants_and_mentions_found_exactly(graph):
    records = discover(graph.connector(), "al@example.com")
    assert short_ids(records) == AL_PARTICIPANT | AL_MENTION
    mention = next(r for r in records if "sup-mention" in r.native_id["internetMessageId"])
    assert mention.reached_via == "mention in subject or body"
    assert mention.matched == ("email:al@example.com",)
    direct = next(r for r in records if "sup-al-1" in r.native_id["internetMessageId"])
    assert direct.reached_via is None
    assert direct.location == "messages"
    assert direct.timestamps == {
        "sentDateTime": "2026-03-02T09:15:00Z",
        "receivedDateTime": "2026-03-02T09:15:00Z",
    }


def test_without_mentions_only_participants(graph):
    records = discover(graph.connector(matching__mentions=False), "al@example.com")
    assert short_ids(records) == AL_PARTICIPANT


def test_pages_are_followed_and_give_the_same_answer(graph):
    route = "GET /users/(?P<user>[^/]+)/messages"
    before = httpx.get(f"{graph.url}/_emulator/graph").json()["batch_items"].get(route, 0)
    small = graph.connector(page_size=2)
    paged = discover(small, "al@example.com")
    whole = discover(graph.connector(page_size=1000), "al@example.com")
    assert short_ids(paged) == short_ids(whole) == AL_PARTICIPANT | AL_MENTION
    # support has 8 pre-filter hits (near misses included): 4 pages of 2; sales 2 hits: 1 page;
    # privacy none: 1 empty page.
    assert small.stats.searches == 3
    assert small.stats.pages == 4 + 1 + 1
    # The first pages of the 3 mailboxes' searches go in one $batch per discovery; only the
    # further pages (support's 3) are requests of their own.
    assert graph.requests()[route] == 3
    items = httpx.get(f"{graph.url}/_emulator/graph").json()["batch_items"]
    assert items[route] - before == 3 + 3


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("AL@Example.COM", AL_PARTICIPANT),  # case-folded
        ("sal@example.com", {"sup-sal"}),  # its mention (sup-mention-sal) is sal@ too
        ("al@example.com.evil.org", {"sup-evil"}),
        ("al+news@example.com", {"sup-plus"}),  # plus-addressing kept distinct
        ("kari@example.com", set()),
        ("o'brien@example.com", {"sup-obrien"}),
        ("al@bücher.example", {"sup-idna"}),  # stored as Al@Bücher.example
        ("al@xn--bcher-kva.example", {"sup-idna"}),  # the same address in IDNA
    ],
)
def test_adversarial_addresses(graph, subject, expected):
    records = discover(graph.connector(matching__mentions=False), subject)
    assert short_ids(records) == expected


def test_mention_of_look_alikes_is_not_a_mention(graph):
    records = discover(graph.connector(), "sal@example.com")
    # sup-mention-sal names sal@example.com in its body: a real mention of sal.
    assert short_ids(records) == {"sup-sal", "sup-mention-sal"}


def test_plus_addressing_folded_when_the_mapping_says_so(graph):
    connector = graph.connector(matching={"mentions": False, "plus_addressing": "same"})
    records = discover(connector, "al@example.com")
    assert short_ids(records) == AL_PARTICIPANT | {"sup-plus"}


def test_other_participants_masked_by_default_and_on_request_not(graph):
    masked = discover(graph.connector(), "al@example.com")
    case = next(r for r in masked if "sup-case" in r.native_id["internetMessageId"])
    assert case.fields["ccRecipients"] == [{"name": "Al Example", "address": "AL@EXAMPLE.COM"}]
    assert case.fields["toRecipients"] == [{"name": "J***", "address": "j***@customer.example"}]
    assert case.fields["from"] == {"name": "S***", "address": "s***@fjelltopp.example"}
    assert case.shared is True
    assert case.shared_with == ("from", "toRecipients")
    plain = discover(graph.connector(record__mask_other_participants=False), "al@example.com")
    case = next(r for r in plain if "sup-case" in r.native_id["internetMessageId"])
    assert case.fields["toRecipients"] == [
        {"name": "Jonas Berg", "address": "jonas.berg@customer.example"}
    ]


def test_record_contents_follow_the_mapping(graph):
    records = discover(graph.connector(), "al@example.com")
    first = next(r for r in records if "sup-al-1" in r.native_id["internetMessageId"])
    assert first.fields["body"] == "Hi,\n\nour licence SEN-1234 expired. Regards, Al"
    assert first.fields["attachments"] == [
        {"name": "invoice.pdf", "contentType": "application/pdf", "size": 33},
        {"name": "screenshot.png", "contentType": "image/png", "size": 4096},
    ]
    assert first.fields["locations"] == [f"{SUPPORT}/Inbox"]
    assert first.categories["body"] == "user.communication.email.body"
    assert first.categories["toRecipients"] == "user.contact.email"
    lean = graph.connector(record={"parts": ["subject"]}, matching__mentions=False)
    first = next(r for r in discover(lean, "al@example.com") if "sup-al-1" in str(r.native_id))
    assert set(first.fields) == {"locations", "subject"}
    assert lean.stats.attachment_requests == 0


def test_attachment_content_up_to_the_cap(graph):
    connector = graph.connector(
        record={"attachment_content": True, "attachment_max_bytes": 1000},
        matching__mentions=False,
    )
    first = next(r for r in discover(connector, "al@example.com") if "sup-al-1" in str(r.native_id))
    invoice, screenshot = first.fields["attachments"]
    assert invoice["content"] == "JVBERi0xLjQgaW52b2ljZSAyMDI2LTAxMTMgZm9yIEFs"  # %PDF-1.4 …
    assert screenshot["content"] is None
    assert screenshot["contentOmitted"] == "larger than 1000 bytes"


def test_the_same_message_in_two_mailboxes_merges_into_one_record(graph):
    records = discover(graph.connector(), "al@example.com")
    copies = [r for r in records if r.native_id == {"internetMessageId": "<quote-1@example.com>"}]
    assert sorted(c.fields["locations"][0] for c in copies) == [
        f"{SALES}/Inbox",
        f"{SUPPORT}/Inbox",
    ]
    frame = merge(records_frame(records))
    assert len(frame) == len(AL_PARTICIPANT | AL_MENTION)
    assert (
        frame["record_id"] == "mail:messages:internetMessageId=<quote-1@example.com>"
    ).sum() == 1


def test_named_mailboxes_only(graph):
    connector = graph.connector(mailboxes={"addresses": [SALES]})
    assert short_ids(discover(connector, "al@example.com")) == {"quote-1", "sal-bcc"}
    assert "GET /users" not in graph.requests()


def test_an_unknown_mailbox_makes_the_source_unavailable(graph):
    connector = graph.connector(mailboxes={"addresses": ["nobody@fjelltopp.example"]})
    with pytest.raises(SourceUnavailable, match=r"nobody@fjelltopp\.example.*404 ErrorInvalidUser"):
        discover(connector, "al@example.com")


def test_discovery_streams_page_by_page(graph):
    connector = graph.connector(page_size=2)
    stream = connector.discover(Subject.from_raw(["al@example.com"]))
    next(stream)
    # One page of support's results read so far, not the whole mailbox.
    assert connector.stats.pages == 1
    stream.close()


# -- throttling and failures -------------------------------------------------------------------


def test_429_is_honoured_and_discovery_completes(graph):
    graph.faults.settings = FaultSettings(throttle_every=3, retry_after_s=1)
    connector = graph.connector()
    records = discover(connector, "al@example.com")
    assert short_ids(records) == AL_PARTICIPANT | AL_MENTION
    # Every third request was refused and sent again.
    assert sum(graph.requests().values()) > connector.stats.requests


def test_a_mailbox_failing_until_retries_run_out_fails_the_source(graph):
    graph.faults.settings = FaultSettings(
        fail_path=f"/users/{SALES}/", fail_status=500, fail_count=100
    )
    connector = graph.connector(max_retries=2)
    with pytest.raises(SourceUnavailable, match=f"mailbox {SALES}: .*HTTP 500"):
        discover(connector, "al@example.com")
    assert connector.stats.retries == 2


def test_a_mailbox_failing_briefly_recovers(graph):
    graph.faults.settings = FaultSettings(
        fail_path=f"/users/{SALES}/messages", fail_status=500, fail_count=2
    )
    connector = graph.connector(max_retries=3)
    assert short_ids(discover(connector, "al@example.com")) == AL_PARTICIPANT | AL_MENTION
    assert connector.stats.retries == 2


def test_at_most_four_requests_in_flight_per_mailbox(graph):
    # 12 messages with attachments in one mailbox, 200 ms per request: without the limit the
    # emulator refuses the 5th concurrent request with 429 MailboxConcurrency.
    for n in range(12):
        graph.store.add_message(
            PRIVACY,
            {
                "subject": f"Attachment {n}",
                "from": {"emailAddress": {"address": "al@example.com"}},
                "toRecipients": [{"emailAddress": {"address": PRIVACY}}],
                "attachments": [{"name": f"{n}.txt", "contentBytes": "aGk="}],
            },
        )
    refused_before = httpx.get(f"{graph.url}/_emulator/graph").json()
    graph.faults.settings = FaultSettings(latency_ms=200)
    connector = graph.connector(matching__mentions=False)
    records = discover(connector, "al@example.com")
    assert len(records) == len(AL_PARTICIPANT) + 1 + 12  # quote-1 in two mailboxes
    assert connector.stats.attachment_requests == 13
    refused = httpx.get(f"{graph.url}/_emulator/graph").json()["mailbox_concurrency_refused"]
    assert refused == refused_before["mailbox_concurrency_refused"]


# -- erasure -----------------------------------------------------------------------------------


def plan_for(records, action=Action.DELETE):
    return [
        PlannedAction(
            record_id=f"{r.source}:{r.location}:internetMessageId={r.native_id['internetMessageId']}",
            source=r.source,
            location=r.location,
            native_id=r.native_id,
            action=action,
        )
        for r in {r.native_id["internetMessageId"]: r for r in records}.values()
    ]


def test_erasure_then_discovery_finds_only_what_is_held(graph):
    connector = graph.connector()
    records = discover(connector, "al@example.com")
    actions = plan_for(records)
    before = graph.store.count()
    report = connector.erase(actions, AL)
    outcomes = {
        a.native_id["internetMessageId"]: r.outcome
        for a, r in zip(actions, report.results, strict=True)
    }
    held = "<sup-contract@mail.example.com>"
    assert outcomes.pop(held) == Outcome.SKIPPED
    assert set(outcomes.values()) == {Outcome.DONE}
    detail = next(r.detail for r in report.results if "sup-contract" in r.record_id)
    assert "Contracts: correspondence about agreements" in detail
    assert "until 2029-08-01" in detail
    # 6 messages, quote-1 in two mailboxes: 6 copies deleted, in one $batch.
    assert graph.store.count() == before - 6
    assert connector.stats.erase_batches == 1
    assert graph.requests()["POST /$batch"] == 1 + 1 + 1  # searches, folder names, erasure
    # Erasure is permanent: nothing in Deleted Items either. Only the held message remains.
    again = graph.connector()
    assert short_ids(discover(again, "al@example.com")) == {"sup-contract"}
    # Nobody else's mail was touched.
    assert short_ids(discover(graph.connector(matching__mentions=False), "sal@example.com")) == {
        "sup-sal"
    }


def test_a_hold_applies_in_a_child_folder_too(graph):
    graph.store.add_message(
        SALES,
        {
            "subject": "Renewal agreement",
            "from": {"emailAddress": {"address": "al@example.com"}},
            "receivedDateTime": "2026-06-01T10:00:00Z",
            "internetMessageId": "<nested@example.com>",
            "folder": "Inbox/Contracts",  # not in the top-level folder listing
        },
    )
    connector = graph.connector(matching__mentions=False)
    records = discover(connector, "al@example.com")
    nested = next(
        r for r in records if r.native_id == {"internetMessageId": "<nested@example.com>"}
    )
    assert nested.fields["folder"] == "Contracts"
    report = connector.erase(plan_for([nested]), AL)
    assert report.results[0].outcome == Outcome.SKIPPED
    assert "until 2029-12-01" in report.results[0].detail


def test_a_second_erasure_is_a_no_op(graph):
    records = discover(graph.connector(), "al@example.com")
    actions = plan_for(records)
    graph.connector().erase(actions, AL)
    count = graph.store.count()
    graph.reset_stats()
    second = graph.connector()  # a fresh connector: copies are looked up by internetMessageId
    report = second.erase(actions, AL)
    outcomes = {r.record_id: r.outcome for r in report.results}
    assert outcomes.pop("mail:messages:internetMessageId=<sup-contract@mail.example.com>") == (
        Outcome.SKIPPED
    )
    assert set(outcomes.values()) == {Outcome.ALREADY_DONE}
    assert graph.store.count() == count
    assert second.stats.erase_batches == 0


def test_erasure_by_a_fresh_connector_looks_the_copies_up(graph):
    # As after the officer's approval: the plan comes from an earlier discovery.
    actions = plan_for(discover(graph.connector(), "al@example.com"))
    quote = [a for a in actions if a.native_id == {"internetMessageId": "<quote-1@example.com>"}]
    graph.reset_stats()
    fresh = graph.connector()
    report = fresh.erase(quote, AL)
    assert [r.outcome for r in report.results] == [Outcome.DONE]
    assert report.results[0].detail == "2 copy/copies permanently deleted"
    # Folder names and one $filter per mailbox (3 + 3 items, in one $batch), then one $batch
    # of 2 deletions: the lower bound for a plan made earlier.
    assert fresh.stats.lookups == 3
    assert graph.requests()["POST /$batch"] == 2
    assert "GET /users/(?P<user>[^/]+)/mailFolders" not in graph.requests()
    assert graph.store.count() == 12


def test_404_of_an_item_gone_since_discovery_counts_as_already_done(graph):
    connector = graph.connector(matching__mentions=False)
    records = discover(connector, "al@example.com")
    box = graph.store.mailbox(SALES)
    graph.store.remove(box, "sal-bcc")  # deleted by someone else after discovery
    report = connector.erase(plan_for([r for r in records if "sal-bcc" in str(r.native_id)]), AL)
    assert [r.outcome for r in report.results] == [Outcome.ALREADY_DONE]


def test_erasure_by_mailbox_and_id_for_messages_without_an_internet_message_id(graph):
    action = PlannedAction(
        record_id="mail:messages:id=sup-sal,mailbox=support@fjelltopp.example",
        source="mail",
        location="messages",
        native_id={"mailbox": SUPPORT, "id": "sup-sal"},
        action=Action.DELETE,
    )
    first = graph.connector().erase([action], SAL)
    assert [r.outcome for r in first.results] == [Outcome.DONE]
    second = graph.connector().erase([action], SAL)
    assert [r.outcome for r in second.results] == [Outcome.ALREADY_DONE]
    assert "sup-sal" not in graph.store.mailbox(SUPPORT).messages


def test_delete_mode_moves_to_deleted_items(graph):
    connector = graph.connector(erasure={"mode": "delete"}, matching__mentions=False)
    records = discover(connector, "al@example.com")
    report = connector.erase(plan_for([r for r in records if "sup-al-1" in str(r.native_id)]), AL)
    assert [r.outcome for r in report.results] == [Outcome.DONE]
    assert "moved to Deleted Items" in report.results[0].detail
    found = discover(graph.connector(matching__mentions=False), "al@example.com")
    moved = next(r for r in found if "sup-al-1" in str(r.native_id))
    assert moved.fields["locations"] == [f"{SUPPORT}/Deleted Items"]


def test_erasure_in_batches_of_twenty(graph):
    for n in range(45):
        graph.store.add_message(
            PRIVACY,
            {"subject": f"n{n}", "from": {"emailAddress": {"address": "bulk@example.com"}}},
        )
    connector = graph.connector()
    actions = plan_for(discover(connector, "bulk@example.com"))
    assert len(actions) == 45
    report = connector.erase(actions, Subject.from_raw(["bulk@example.com"]))
    assert report.complete
    assert connector.stats.erase_batches == 3
    assert discover(graph.connector(), "bulk@example.com") == []


def test_throttled_batch_items_are_sent_again(graph):
    connector = graph.connector(matching__mentions=False)
    actions = plan_for(discover(connector, "al@example.com"))
    graph.faults.settings = FaultSettings(throttle_every=4, retry_after_s=0)
    report = connector.erase(actions, AL)
    graph.faults.settings = FaultSettings()
    assert report.count(Outcome.DONE) == 4
    assert report.count(Outcome.SKIPPED) == 1
    assert connector.stats.erase_batches >= 2


def test_actions_erase_does_not_carry_out_fail_and_a_keep_is_skipped(graph):
    # Issue 14's contract for every kind: never silently dropped, never DONE.
    connector = graph.connector(matching__mentions=False)
    records = discover(connector, "al@example.com")
    report = connector.erase(plan_for(records[:1], Action.RECTIFY), AL)
    assert report.results[0].outcome == Outcome.FAILED
    assert report.results[0].detail == "cannot rectify here"
    kept = plan_for(records[:1], Action.KEEP)[0].model_copy(update={"reason": "a contract"})
    [result] = connector.erase([kept], AL).results
    assert (result.outcome, result.detail) == (Outcome.SKIPPED, "kept: a contract")
    assert connector.stats.erase_batches == 0


def test_capabilities_are_discover_erase_and_sweep(graph):
    assert capabilities(graph.connector()) == {
        Capability.DISCOVER,
        Capability.ERASE,
        Capability.SWEEP,
    }


# -- matching and escaping, without a server ---------------------------------------------------


def test_search_expression_quotes_and_escapes():
    kql = search_expression(["o'brien@example.com"], mentions=True)
    assert kql == 'participants:"o\'brien@example.com" OR "o\'brien@example.com"'
    assert graph_search_value('participants:"a\\"b"') == '"participants:\\"a\\\\\\"b\\""'
    idna = search_expression(["al@xn--bcher-kva.example"], mentions=False)
    # Both domain spellings, the Unicode one also decomposed (u + U+0308) for indexes that
    # do not normalise: a wider pre-filter.
    assert idna == (
        'participants:"al@xn--bcher-kva.example" OR participants:"al@bücher.example"'
        ' OR participants:"al@bu\u0308cher.example"'
    )


def test_matcher_reads_whole_addresses_in_text():
    matcher = Matcher(["kari@example.com"])
    assert matcher.in_text("write to akari@example.com or kari@example.com.evil.org") == set()
    assert matcher.in_text("write to Kari@Example.com.") == {"kari@example.com"}
    html = {
        "contentType": "html",
        "content": "<p>Ask <a href='mailto:kari@example.com'>her</a></p>",
    }
    assert matcher.in_text(body_text(html)) == {"kari@example.com"}


def test_mapping_errors_are_named():
    bad = dict(BASE_MAPPING, mailboxes={"addresses": ["a@b.example"], "all_users": True})
    with pytest.raises(MappingError, match="mailboxes"):
        parse_mapping(yaml.safe_dump(bad), Path("mail.yaml"))
    bad = copy.deepcopy(BASE_MAPPING)
    bad["field_categories"]["body"] = "user.unknown_thing"
    with pytest.raises(MappingError, match=r"field_categories\.body"):
        parse_mapping(yaml.safe_dump(bad), Path("mail.yaml"))


def test_config_needs_credentials_or_a_loopback_emulator():
    with pytest.raises(ValueError, match="loopback"):
        MailSource(kind="mail", mapping=Path("m.yaml"), base_url="https://graph.example/v1.0")
    with pytest.raises(ValueError, match="all of tenant_id"):
        MailSource(kind="mail", mapping=Path("m.yaml"), tenant_id="t")
    real = MailSource(
        kind="mail",
        mapping=Path("m.yaml"),
        tenant_id="t",
        client_id="c",
        client_secret={"env": "GRAPH_SECRET"},
    )
    assert real.client_secret.env == "GRAPH_SECRET"


def test_fixture_is_what_the_tests_say():
    data = json.loads(FIXTURE.read_text())
    assert sorted(data["mailboxes"]) == [PRIVACY, SALES, SUPPORT]
    assert sum(len(v) for v in data["mailboxes"].values()) == 14


# -- the access flow, with mail among the sources ------------------------------------------------


@pytest.mark.prefect
def test_access_flow_includes_mail(graph, tmp_path, sandbox_sqlite_url, prefect_harness):
    import jsonschema

    from flows.access import access_request
    from sandbox.mail_part import mail_source
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    write_config(
        config, onprem_source(sandbox_sqlite_url) | mail_source(graph.url), tmp_path / "exports"
    )
    with run_settings(config, tmp_path / "out"):
        state = access_request(
            request_id="DSR-2026-0043",
            subject_emails=["al@example.com"],
            return_state=True,
        )
    assert state.is_completed(), state.message
    result = state.result()
    # Six messages (quote-1's two copies merged into one record), as found above.
    assert result.records_per_source["mail"] == len(AL_PARTICIPANT | AL_MENTION)
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    schema = json.loads((Path(result.export_dir) / document["$schema"]).read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    mail = document["records"]["mail"]
    subjects = {p["fields"].get("subject") for p in mail["user.communication.email.subject"]}
    assert subjects == {
        "Licence question",
        "Re: Licence question",
        "Access for a colleague",
        "Quote request",
        "Signed agreement",
        "Price list",
    }
    text = json.dumps(mail)
    assert "jonas.berg@customer.example" not in text  # another participant: masked
    assert "j***@customer.example" in text
    assert "sal@example.com" not in text


def test_the_plan_from_the_mapping_names_the_mailboxes_to_look_in(graph):
    # The erasure flow's own plan: copies folded, each action hinting at its mailboxes, so a
    # fresh connector looks only there.
    from dsrflow.merge import fold_records
    from dsrflow.planning import build_erasure_plan

    connector = graph.connector()
    records = discover(connector, "al@example.com")
    plan = build_erasure_plan(
        fold_records(records), {"mail": connector.mapping}, dt.date(2026, 11, 22)
    )
    quote = next(a for a in plan if a.native_id == {"internetMessageId": "<quote-1@example.com>"})
    assert len(quote.hints["mailboxes"]) == 2  # the same message in two mailboxes: one action
    graph.reset_stats()
    fresh = graph.connector()
    report = fresh.erase([quote], AL)
    assert [r.outcome for r in report.results] == [Outcome.DONE]
    assert report.results[0].detail == "2 copy/copies permanently deleted"
    assert fresh.stats.lookups == 2  # only the two hinted mailboxes, not all three

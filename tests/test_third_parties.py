"""Art. 15(4) the same in every source: one rule (connectors/third_parties.py) for who else a
record names.

The table seeds the same three people into the SQL database and the Graph, Drive and Jira
emulators (over real HTTP, through the real SDKs) and discovers the subject there: a record
holding (a) the subject's address, (b) another person's address and phone number written in
free text and (c) one of the controller's own addresses (Kantega's two contact addresses, from
config/kantega.yaml) shows (a) and (c) in clear and (b) masked, and is shared because of (b)
alone; a record holding only (a) and (c) is not shared, so erasure deletes it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors import SourceContext, open_connector
from connectors.jira.mapping import ErasureMode
from connectors.marketplace.contacts import subjects_roles
from connectors.third_parties import OwnAddresses, ThirdParties, Whose
from dsrflow.config import Config, Controller, load_config
from dsrflow.mapping import BaseMapping, load_mapping
from dsrflow.plan import Action
from dsrflow.records import Record
from dsrflow.request import Subject
from sandbox.runtime import start

ROOT = Path(__file__).resolve().parents[1]
KANTEGA = ROOT / "config" / "kantega.yaml"

KARI = "kari@example.com"  # (a) the subject
OLA = "ola.hansen@example.org"  # (b) someone else ...
OLA_PHONE = "+47 912 34 567"  # ... and his phone number, as people write it
OLA_DIGITS = ("91234567", "912 34 567", "+4791234567")
SUPPORT = "support.atlassian@kantega.no"  # (c) the controller's, both spellings of the policy
SUPPORT_2 = "atlassian.support@kantega.no"

SHARED_TEXT = f"From {KARI}: my colleague {OLA} (mobile {OLA_PHONE}) also wrote to {SUPPORT}."
OWN_TEXT = f"Please answer {KARI}, copy to {SUPPORT_2} and {SUPPORT}."


def kantega() -> Controller:
    return Controller.model_validate(yaml.safe_load(KANTEGA.read_text("utf-8"))["controller"])


# -- the rule -----------------------------------------------------------------------------------


def rule(emails=(KARI,), phones=(), own: OwnAddresses | None = None) -> ThirdParties:
    context = SourceContext(own=own if own is not None else OwnAddresses.of(kantega()))
    return ThirdParties.of(emails, phones, context)


def test_both_kantega_contact_addresses_are_its_own() -> None:
    others = rule()
    for address in (SUPPORT, SUPPORT_2, "Support.Atlassian@KANTEGA.no", "atle.prange@kantega.no"):
        assert others.whose_address(address) == Whose.CONTROLLER, address
    # kantega.no is not an own domain: its other people are third persons.
    assert others.whose_address("someone@kantega.no") == Whose.OTHER
    # A look-alike of an own address (U+0455 CYRILLIC SMALL LETTER DZE) is someone else.
    assert others.whose_address("\u0455upport.atlassian@kantega.no") == Whose.OTHER
    assert others.whose_address(" KARI@example.com ") == Whose.SUBJECT


def test_own_domains_cover_their_addresses_exactly() -> None:
    own = OwnAddresses(domains=frozenset({"fjelltopp.example"}))
    others = rule(own=own)
    assert others.whose_address("sales@FJELLTOPP.example") == Whose.CONTROLLER
    assert others.whose_address("x@sub.fjelltopp.example") == Whose.OTHER
    assert others.whose_address("x@fjelltopp.example.evil.org") == Whose.OTHER


def test_free_text_keeps_subject_and_controller_and_masks_the_others() -> None:
    others = rule()
    masked = others.mask(SHARED_TEXT)
    assert masked == (
        f"From {KARI}: my colleague o***@example.org (mobile ***67) also wrote to {SUPPORT}."
    )
    assert others.others_in(SHARED_TEXT) == {f"email:{OLA}", "phone:+4791234567"}
    assert others.others_in(OWN_TEXT) == set()
    assert others.mask(OWN_TEXT) == OWN_TEXT
    # The subject's own number stays; a look-alike of her address does not.
    mine = rule(phones=("+4791234567",))
    assert mine.mask(f"call {OLA_PHONE}") == f"call {OLA_PHONE}"
    assert rule().mask(f"{KARI}.evil.org") == "k***@example.com.evil.org"


def test_digits_inside_an_address_or_a_date_are_no_phone_number() -> None:
    others = rule(emails=("ola.91234567@example.org",))
    text = "ola.91234567@example.org wrote on 2026-01-15, licence SEN-12345678"
    assert others.others_in(text) == set()
    assert others.mask(text) == text


def test_without_the_controllers_addresses_they_count_as_other_people() -> None:
    """What the rule prevents: the support address masked as a third person's."""
    bare = rule(own=OwnAddresses())
    assert bare.others_in(OWN_TEXT) == {f"email:{SUPPORT}", f"email:{SUPPORT_2}"}


# -- one table over the four kinds, over real HTTP -----------------------------------------------


def _message(mid: str, to: str, body: str) -> dict[str, Any]:
    def person(address: str) -> dict[str, Any]:
        return {"emailAddress": {"name": address.split("@")[0], "address": address}}

    return {
        "id": mid,
        "subject": "Licence question",
        "from": person(KARI),
        "sender": person(KARI),
        "toRecipients": [person(to)],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "receivedDateTime": "2026-03-02T09:15:00Z",
        "sentDateTime": "2026-03-02T09:15:00Z",
        "body": {"contentType": "html", "content": f"<html><body><p>{body}</p></body></html>"},
        "internetMessageId": f"<{mid}@mail.example.com>",
        "conversationId": f"conv-{mid}",
        "attachments": [],
    }


def _issue(key: str, description: str) -> dict[str, Any]:
    return {
        "key": key,
        "fields": {
            "summary": "Licence question",
            "description": description,
            "status": {"name": "Waiting for support"},
            "created": "2026-03-01T09:00:00Z",
            "reporter": {"accountId": "u-kari"},
            "labels": [],
            "customfield_10010": {"requestType": {"name": "Get help"}},
        },
        "participants": [],
        "comments": [],
    }


FIXTURES: dict[str, Any] = {
    "onprem.json": {
        "customers": [
            {"id": 1, "company": "Fjord AS", "country": "NO", "created_at": "2021-03-01T09:00:00"}
        ],
        "contacts": [
            {
                "id": 1,
                "customer_id": 1,
                "email": KARI,
                "name": "Kari Subject",
                "phone": None,
                "role": "Admin",
                "created_at": "2021-03-02T10:00:00",
            }
        ],
        "config_reports": [
            {
                "id": n,
                "license_id": None,
                "contact_id": 1,
                "submitted_at": "2026-03-01T10:00:00",
                "report": text,
            }
            for n, text in ((1, SHARED_TEXT), (2, OWN_TEXT))
        ],
    },
    "mail.json": {
        "mailboxes": {
            SUPPORT: [
                _message("m-shared", SUPPORT, SHARED_TEXT),
                _message("m-own", SUPPORT_2, OWN_TEXT),
            ]
        }
    },
    "drive.json": {
        "folders": [{"id": "fld-sales", "name": "Sales"}],
        "spreadsheets": [
            {
                "id": "ss-notes",
                "name": "Customer notes",
                "parents": ["fld-sales"],
                "sheets": [
                    {
                        "title": "Notes",
                        "values": [["Email", "Note"], [KARI, SHARED_TEXT], [KARI, OWN_TEXT]],
                    }
                ],
            },
            {  # no identity column: every cell is scanned (mappings/drive.yaml, last layout)
                "id": "ss-meetings",
                "name": "Meeting notes",
                "parents": ["fld-sales"],
                "sheets": [
                    {
                        "title": "2026",
                        "values": [
                            ["Date", "Note"],
                            ["2026-03-01", SHARED_TEXT],
                            ["2026-03-02", OWN_TEXT],
                        ],
                    }
                ],
            },
        ],
    },
    "jira.json": {
        "users": [
            {
                "accountId": "5b10a2844c20165700ede21g",
                "emailAddress": "sandbox-admin@fjelltopp.example",
                "displayName": "Sandbox Admin",
            },
            {"accountId": "u-kari", "emailAddress": KARI, "displayName": "Kari Subject"},
        ],
        "servicedesks": [
            {"id": "1", "projectKey": "SUP", "projectName": "Support", "customers": ["u-kari"]}
        ],
        "issues": [_issue("SUP-1", SHARED_TEXT), _issue("SUP-2", OWN_TEXT)],
    },
}


@dataclass(frozen=True)
class Case:
    """Where the two records of one kind are, and which field holds the free text."""

    source: str
    location: str
    shared_id: dict[str, Any]
    own_id: dict[str, Any]
    text_field: str
    shared_with: tuple[str, ...]
    own_action: Action = Action.DELETE  # what erasure plans for the record of (a)+(c)


CASES = [
    Case("onprem", "config_reports", {"id": 1}, {"id": 2}, "report", ("config_reports.report",)),
    Case(
        "mail",
        "messages",
        {"internetMessageId": "<m-shared@mail.example.com>"},
        {"internetMessageId": "<m-own@mail.example.com>"},
        "body",
        ("body",),
    ),
    Case("drive", "Customer notes / Notes", {"row": 2}, {"row": 3}, "Note", ("Note",)),
    # The scan layout's erasure is clear_cells: the row stays, her cells are emptied.
    Case("drive", "Meeting notes / 2026", {"row": 2}, {"row": 3}, "Note", ("Note",), Action.REDACT),
    Case("jira", "issues", {"key": "SUP-1"}, {"key": "SUP-2"}, "description", ("description",)),
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    fixtures = tmp_path_factory.mktemp("third-parties-fixtures")
    for name, content in FIXTURES.items():
        (fixtures / name).write_text(json.dumps(content), "utf-8")
    with start(tmp_path_factory.mktemp("third-parties-sandbox"), fixtures) as running:
        config = load_config(running.config_path)
        yield config.model_copy(update={"controller": kantega()})


def _mapping(config: Config, name: str) -> BaseMapping:
    mapping = load_mapping(config.sources[name].mapping)
    if name == "jira":  # the mode that deletes a request nobody else took part in
        erasure = mapping.erasure.model_copy(update={"mode": ErasureMode.DELETE_UNSHARED})
        mapping = mapping.model_copy(update={"erasure": erasure})
    return mapping


def _discover(config: Config, name: str, context: SourceContext) -> list[Record]:
    with open_connector(name, config.sources[name], _mapping(config, name), context) as connector:
        return list(connector.discover(Subject.from_raw([KARI])))


def _pick(records: list[Record], case: Case, native: dict[str, Any]) -> Record:
    found = [
        r for r in records if r.location == case.location and native.items() <= r.native_id.items()
    ]
    assert len(found) == 1, (case.source, native, [r.record_id for r in records])
    return found[0]


IDS = [f"{c.source}-{c.location.split(' / ')[0]}" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_other_people_masked_and_the_controller_not_a_third_person(
    sandbox: Config, case: Case
) -> None:
    records = _discover(sandbox, case.source, SourceContext.of(sandbox))
    shared = _pick(records, case, case.shared_id)
    text = str(shared.fields[case.text_field])
    assert KARI in text and SUPPORT in text  # (a) and (c) in clear
    assert OLA not in text and "o***@example.org" in text  # (b) masked
    assert not any(d in text for d in OLA_DIGITS) and "***67" in text
    assert not any(OLA in json.dumps(v) for v in shared.fields.values())
    assert shared.shared and shared.shared_with == case.shared_with  # because of (b) alone

    own = _pick(records, case, case.own_id)
    assert OWN_TEXT in str(own.fields[case.text_field])  # (a) and (c), as written
    assert not own.shared and own.shared_with == ()
    action = _mapping(sandbox, case.source).plan_erasure(own, dt.date(2026, 12, 6))
    assert action.action == case.own_action, action


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_without_own_addresses_the_support_address_would_make_it_shared(
    sandbox: Config, case: Case
) -> None:
    """The same discovery with a context that knows no own addresses: (c) is masked and the
    record is shared, so the table above depends on the controller's addresses."""
    records = _discover(sandbox, case.source, SourceContext(phone_region="NO"))
    own = _pick(records, case, case.own_id)
    assert own.shared
    assert SUPPORT not in str(own.fields[case.text_field])


def test_a_marketplace_contact_of_the_controllers_own_is_nobody_elses() -> None:
    """The Marketplace connector exports others by role only; the controller's own address
    as a contact (a licence the vendor bought for its support desk) is not another person."""
    item = {
        "contactDetails": {
            "technicalContact": {"email": KARI},
            "billingContact": {"email": SUPPORT_2},
        },
        "partnerDetails": {"billingContact": {"email": OLA}},
    }
    keys = {KARI}
    own, others, matched = subjects_roles("licenses", item, keys, OwnAddresses.of(kantega()))
    assert list(own) == ["technical_contact"] and matched == keys
    assert others == ["partner_billing_contact"]
    # Without the controller's addresses the billing contact would count as a third person.
    assert subjects_roles("licenses", item, keys)[1] == [
        "billing_contact",
        "partner_billing_contact",
    ]

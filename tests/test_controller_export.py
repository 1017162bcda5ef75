"""The Art. 15 section of an export made with the controller's own configuration
(config/kantega.yaml and mappings/kantega/), statement by statement against the privacy policy
(https://docs.kantega.no/display/KA/Privacy+Policy), whose table is written here as data."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest

from dsrflow.export import build_export, render_html, write_export
from dsrflow.merge import merge, records_frame
from dsrflow.records import Record
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from tests.conftest import REPO
from tests.test_controller_config import SECRETS

# The policy, as data: who, which data on which basis, who receives it, how long, from where.
POLICY = {
    "controller": {
        "name": "KANTEGA SSO AS",
        "address": "Bassengbakken 4, 7042 Trondheim",
        "contact": {"support.atlassian@kantega.no", "atlassian.support@kantega.no"},
        "information_officer": ("Atle Prange", "atle.prange@kantega.no"),
    },
    # category (and everything under it) -> the legal basis the policy gives, and for consent
    # the consent it rests on.
    "legal_basis": {
        # "a legitimate interest in the contact information we collect" (not contract):
        # contact and sales information, support queries, written communication.
        "user.contact": ("legitimate_interests", None),
        "user.name": ("legitimate_interests", None),
        "user.job_title": ("legitimate_interests", None),
        "user.contract": ("legitimate_interests", None),
        "user.communication": ("legitimate_interests", None),
        "user.support": ("legitimate_interests", None),
        "user.unique_id": ("legitimate_interests", None),  # the service desk's account id
        "user.employer": ("legitimate_interests", None),
        "system.operations": ("legitimate_interests", None),  # dates, status of those records
        # analytics: with consent
        "user.behavior": ("consent", "analytics"),
        "user.unique_id.pseudonymous": ("consent", "analytics"),  # the usage event's user hash
        # configuration and usage of the software: with consent, per case or general
        "user.device": ("consent", "config_collection"),
    },
    "recipients": [("Microsoft", "processor"), ("Google", "processor")],
    "usage_retention": ("2 years", "aggregated"),
    "complaint": "Datatilsynet",
    "marketplace_source": "Atlassian Marketplace",
    "automated_decisions": "none",
}

SUBJECT = "kari.nordmann@customer.example"


@pytest.fixture
def kantega(monkeypatch: pytest.MonkeyPatch):
    from dsrflow.config import load_config

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    config = load_config(REPO / "config" / "kantega.yaml")
    return config, config.load_mappings()


def _records(mappings) -> list[Record]:
    """What discovery returns for one customer, in the shape each connector gives it."""
    jira = mappings["jira"]
    issue_fields = {"key": "SUP-7", "summary": "SAML login fails", "status": "Done"}
    customer_fields = {"servicedesk": "SUP", "account_id": "acc-1", "email": SUBJECT}
    matched = (f"email:{SUBJECT}",)
    return [
        Record(
            source="onprem",
            location="contacts",
            native_id={"id": 7},
            categories={
                "email": "user.contact.email",
                "name": "user.name",
                "phone": "user.contact.phone",
                "role": "user.job_title",
            },
            fields={"email": SUBJECT, "name": "Kari", "phone": "+4791234567", "role": "admin"},
            matched=matched,
        ),
        Record(
            source="onprem",
            location="licenses",
            native_id={"id": 3},
            categories={"sen": "user.contract", "product": "user.contract"},
            fields={"sen": "SEN-1", "product": "Kantega SSO Enterprise"},
            reached_via="licenses.technical_contact_id -> contacts.id",
        ),
        Record(
            source="onprem",
            location="usage_events",
            native_id={"id": 11},
            categories={
                "event": "user.behavior",
                "instance_id": "user.device",
                "user_hash": "user.unique_id.pseudonymous",
            },
            fields={"event": "login", "instance_id": "i-1", "user_hash": "h1"},
            reached_via="usage_events.license_id -> licenses.id",
        ),
        Record(
            source="onprem",
            location="config_reports",
            native_id={"id": 2},
            categories={"report": "user.device"},
            fields={"report": "{...}"},
            reached_via="config_reports.contact_id -> contacts.id",
        ),
        Record(
            source="mail",
            location="messages",
            native_id={"internetMessageId": "<m1@customer.example>"},
            categories={
                "subject": "user.communication.email.subject",
                "participants": "user.contact.email",
            },
            fields={"subject": "Renewal", "participants": [SUBJECT]},
            matched=matched,
        ),
        Record(
            source="jira",
            location="customers",
            native_id={"servicedesk": "1", "account_id": "acc-1"},
            categories={k: jira.category_of(k) for k in customer_fields},
            fields=customer_fields,
            matched=matched,
        ),
        Record(
            source="jira",
            location="issues",
            native_id={"key": "SUP-7"},
            categories={k: jira.category_of(k) for k in issue_fields},
            fields=issue_fields,
            matched=matched,
        ),
    ]


def _export(kantega):
    config, mappings = kantega
    request = DataSubjectRequest(
        id="DSR-2026-0015",
        type=RequestType.ACCESS,
        subject=Subject.from_raw([SUBJECT]),
        received_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )
    frame = merge(records_frame(_records(mappings)))
    return build_export(
        request, config, mappings, frame, now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    )


def _basis_of(category: str) -> tuple[str, str | None] | None:
    """The policy's basis for ``category``: its own row or its nearest parent's."""
    table = POLICY["legal_basis"]
    parts = category.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in table:
            return table[".".join(parts[:n])]
    return None


def test_purposes_and_legal_bases_are_the_policys(kantega) -> None:
    info = _export(kantega).information
    stated: dict[str, set[str]] = {}
    for purpose in info.purposes:
        for category in purpose.categories:
            stated.setdefault(category, set()).add(purpose.legal_basis)
    # every category found is stated with a purpose, and with the policy's basis only
    assert set(stated) == set(info.categories)
    for category, bases in stated.items():
        policy = _basis_of(category)
        assert policy is not None, f"the policy's table names no basis for {category}"
        assert bases == {policy[0]}, category
    # contact information and all three kinds the policy names are in this export
    assert stated["user.contact.email"] == {"legitimate_interests"}
    assert stated["user.behavior"] == {"consent"}
    assert stated["user.unique_id.pseudonymous"] == {"consent"}
    assert stated["user.device"] == {"consent"}


# Categories the policy's table does not name, and why their basis is what it is.
POLICY_SILENT = {
    "user.financial": "legal_obligation",  # invoices: Bookkeeping Act §13
    "user.consent": "legal_obligation",  # proof of consent: Art. 7(1)
    "user": "legitimate_interests",  # working notes in sheets, about the contact
}


def test_every_mapping_says_what_the_policy_says(kantega) -> None:
    _, mappings = kantega
    for name, mapping in mappings.items():
        for category, use in mapping.categories.items():
            if category in POLICY_SILENT:
                assert use.legal_basis.value == POLICY_SILENT[category], (name, category)
                continue
            policy = _basis_of(category)
            assert policy is not None, f"{name}: the policy names no basis for {category}"
            assert (use.legal_basis.value, use.consent_purpose) == policy, (name, category)


def test_one_category_kept_differently_in_two_sources_states_both(kantega) -> None:
    retention = _export(kantega).information.retention
    contact = {r.retention for r in retention if r.category == "user.contact.email"}
    _, mappings = kantega
    assert contact == {
        mappings["onprem"].categories["user.contact"].retention,
        mappings["jira"].categories["user.contact"].retention,
    }
    assert len(contact) == 2


def test_recipients_are_microsoft_and_google_as_processors(kantega) -> None:
    recipients = _export(kantega).information.recipients
    assert [(r["name"].split()[0], r["role"]) for r in recipients] == POLICY["recipients"]


def test_usage_data_is_kept_raw_two_years_then_aggregated(kantega) -> None:
    retention = _export(kantega).information.retention
    usage = [r.retention for r in retention if r.category == "user.behavior"]
    assert usage, "the usage event's category has no retention statement"
    for text in usage:
        assert all(word in text for word in POLICY["usage_retention"]), text
    # ...and the onprem mapping does what it says: raw events go after 2 years, aggregated.
    _, mappings = kantega
    events = mappings["onprem"].tables["usage_events"]
    assert events.retention.max_age.years == 2
    assert events.retention.aggregate is not None


def test_complaint_source_and_automated_decisions(kantega) -> None:
    info = _export(kantega).information
    assert info.complaint["name"] == POLICY["complaint"]
    origins = {(s.source, s.location): s.collected_from for s in info.sources}
    assert POLICY["marketplace_source"] in origins[("onprem", "contacts")]
    assert POLICY["marketplace_source"] in origins[("onprem", "licenses")]
    assert info.automated_decision_making.startswith(POLICY["automated_decisions"])


def test_controller_and_information_officer(kantega, tmp_path) -> None:
    document = _export(kantega)
    controller = document.controller
    assert controller.name == POLICY["controller"]["name"]
    assert controller.address.startswith(POLICY["controller"]["address"])
    assert {controller.contact_email, *controller.own_addresses} == POLICY["controller"]["contact"]
    officer = controller.information_officer
    assert officer is not None
    assert (officer.name, officer.email) == POLICY["controller"]["information_officer"]
    # in the portable file (valid against its schema) and on the page
    files = write_export(document, tmp_path / "out")
    written = json.loads(files.export_json.read_text())
    schema = json.loads(files.schema.read_text())
    jsonschema.Draft202012Validator(schema).validate(written)
    assert written["controller"]["information_officer"] == {
        "name": "Atle Prange",
        "email": "atle.prange@kantega.no",
    }
    page = render_html(document)
    assert "information officer Atle Prange (atle.prange@kantega.no)" in page
    assert "atlassian.support@kantega.no" in page

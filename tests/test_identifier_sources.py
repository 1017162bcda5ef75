"""Every source agrees with the shared table of identifier spellings.

Each test seeds one record per stored spelling of tests/fixtures/identifier_cases.yaml into a
real source (SQL on SQLite and PostgreSQL, the Graph, Drive, Jira and Marketplace emulators),
discovers each subject of the table through the connector, and checks that exactly the ``same``
spellings are found: a look-alike (KELVIN SIGN, full-width letters, U+0430 CYRILLIC SMALL LETTER
A) is never the subject, and sloppy spellings that are hers (padding, capitals, NFD, Unicode or
IDNA domain) are never missed.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import yaml

from connectors.sql.connector import SqlConnector
from dsrflow.mapping import MappingError, load_mapping, parse_mapping
from dsrflow.request import Subject
from tests.conftest import ONPREM_MAPPING, load_sandbox_fixture
from tests.support.identifier_cases import PHONE_REGION, cases, check, subjects

FIRST_ID = 1000  # above the sandbox fixture's contacts
NOBODY = "nobody@example.com"


def _subject(kind: str, typed: str) -> Subject:
    if kind == "email":
        return Subject.from_raw([typed], phone_region=PHONE_REGION)
    return Subject.from_raw([NOBODY], [typed], phone_region=PHONE_REGION)


# -- SQL -------------------------------------------------------------------------------------


def _seed_contacts(url: str) -> dict[int, str]:
    """One contact per stored spelling; returns contact id -> case id."""
    by_id: dict[int, str] = {}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for number, case in enumerate(cases(), start=FIRST_ID):
            column = "email" if case.kind == "email" else "phone"
            conn.execute(
                sa.text(f"INSERT INTO contacts (id, {column}, name) VALUES (:id, :value, :name)"),
                {"id": number, "value": case.stored, "name": f"Person {number}"},
            )
            by_id[number] = case.id
    engine.dispose()
    return by_id


def _check_sql(url: str, source: str) -> SqlConnector:
    by_id = _seed_contacts(url)
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), url)
    try:
        for kind in ("email", "phone"):
            for typed in subjects(kind):
                records = connector.discover(_subject(kind, typed))
                found = [
                    by_id[r.native_id["id"]]
                    for r in records
                    if r.location == "contacts" and r.native_id["id"] in by_id
                ]
                check(kind, typed, found, source)
    finally:
        connector.close()
    return connector


def test_sql_agrees_with_the_table(sandbox_url):
    connector = _check_sql(sandbox_url, f"SQL ({sandbox_url.split(':')[0]})")
    assert connector.lower_folds_unicode is False  # SQLite, and PostgreSQL in the C locale


def test_sql_on_a_postgres_whose_lower_folds_unicode(pg_database_factory):
    """A UTF-8 locale folds Å in lower(): the pre-filter asks for fewer spellings, finds the
    same rows."""
    base = sa.engine.make_url(pg_database_factory("admin"))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "CREATE DATABASE utf8_locale TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            )
        )
    admin.dispose()
    url = load_sandbox_fixture(base.set(database="utf8_locale").render_as_string(False))
    connector = _check_sql(url, "SQL (PostgreSQL, C.UTF-8)")
    assert connector.lower_folds_unicode is True


def test_sql_pre_filter_stays_an_index_lookup(sandbox_sqlite_url):
    """All the spellings are exact values: SQLite still searches the lower(email) index."""
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_sqlite_url)
    statements: list[tuple[str, object]] = []

    def remember(_conn, _cursor, statement, parameters, _context, _many):
        if "lower(contacts.email)" in statement:
            statements.append((statement, parameters))

    sa.event.listen(connector.engine, "before_cursor_execute", remember)
    try:
        list(connector.discover(_subject("email", "\u00e5se@b\u00fccher.example")))
        sa.event.remove(connector.engine, "before_cursor_execute", remember)
        assert statements
        with connector.engine.connect() as conn:
            for statement, parameters in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                details = " ".join(str(row[-1]) for row in plan)
                assert "USING INDEX ix_contacts_email_lower" in details, details
    finally:
        connector.close()


# -- mail ------------------------------------------------------------------------------------


def test_mail_agrees_with_the_table():
    from tests.support.graph import running_graph

    mailbox = "support@fjelltopp.example"
    with running_graph("graph-identifiers") as graph:
        for case in cases("email"):
            # As a participant, and (another message) as a mention in the body only.
            graph.store.add_message(
                mailbox,
                {
                    "internetMessageId": f"<p-{case.id}@identifiers.test>",
                    "subject": "Question",
                    "from": {"emailAddress": {"name": "Someone", "address": case.stored}},
                    "toRecipients": [{"emailAddress": {"name": "Support", "address": mailbox}}],
                },
            )
            graph.store.add_message(
                mailbox,
                {
                    "internetMessageId": f"<m-{case.id}@identifiers.test>",
                    "subject": "Forwarded",
                    "from": {"emailAddress": {"name": "Agent", "address": mailbox}},
                    "body": {"contentType": "text", "content": f"Write to {case.stored} today."},
                },
            )
        connector = graph.connector(mailboxes={"addresses": [mailbox]})
        try:
            for typed in subjects("email"):
                records = connector.discover(_subject("email", typed))
                ids = [r.native_id["internetMessageId"][1:].split("@")[0] for r in records]
                for how in ("p", "m"):
                    found = [i[2:] for i in ids if i.startswith(f"{how}-")]
                    check(
                        "email",
                        typed,
                        found,
                        f"mail ({'participant' if how == 'p' else 'mention'})",
                    )
        finally:
            connector.close()


# -- Drive -----------------------------------------------------------------------------------

SHEET_HEADERS = ["Signed up", "Name", "Email", "Phone", "Company", "Product"]


def test_drive_agrees_with_the_table(tmp_path):
    from connectors.drive.client import GoogleClient
    from connectors.drive.connector import DriveConnector
    from connectors.drive.settings import DriveSource
    from sandbox.drive_part import start_drive
    from sandbox.runtime import SandboxContext

    rows, by_row = [SHEET_HEADERS], {}
    for number, case in enumerate(cases(), start=2):
        email, phone = (case.stored, "") if case.kind == "email" else ("", case.stored)
        rows.append(["2026-03-01", f"Person {number}", email, phone, "Shamrock Ltd", "Forms"])
        by_row[number] = case.id
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    spreadsheet = {
        "id": "ss-trials",
        "name": "Trial sign-ups 2026",
        "parents": ["fld-sales"],
        "sheets": [{"title": "Sign-ups", "values": rows}],
    }
    drive = {"folders": [{"id": "fld-sales", "name": "Sales"}], "spreadsheets": [spreadsheet]}
    (fixtures / "drive.json").write_text(json.dumps(drive), encoding="utf-8")
    part = start_drive(SandboxContext(directory=tmp_path, fixtures=fixtures))
    try:
        source = DriveSource.model_validate(part.sources["drive"])
        client = GoogleClient("drive", source, sleep=lambda _s: None)
        connector = DriveConnector("drive", load_mapping(source.mapping), source, client=client)
        for kind in ("email", "phone"):
            for typed in subjects(kind):
                records = connector.discover(_subject(kind, typed))
                check(kind, typed, [by_row[r.native_id["row"]] for r in records], "Drive")
    finally:
        part.stop()


# -- Jira ------------------------------------------------------------------------------------


def test_jira_agrees_with_the_table(monkeypatch):
    from sandbox import jira_seed
    from sandbox.emulators.jira import JiraStore
    from tests.test_jira_connector import TOKEN_ENV, start_site

    store = JiraStore()
    store.credentials = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    store.add_user("u-admin", jira_seed.SANDBOX_EMAIL, "Sandbox Admin")
    by_issue, accounts = {}, []
    for number, case in enumerate(cases("email"), start=1):
        # Each person is a customer with the stored address (Atlassian accounts keep no
        # surrounding whitespace), reports one request and is named in it by address.
        account = f"u-{number}"
        store.add_user(account, case.stored.strip(), f"Person {number}")
        accounts.append(account)
        key = f"SUP-{number}"
        store.add_issue(
            key,
            {
                "summary": "A question",
                "description": f"Please write to {case.stored} today.",
                "status": {"name": "Waiting for support"},
                "created": "2026-03-01T09:00:00Z",
                "reporter": {"accountId": account},
                "labels": [],
            },
            [],
            [],
        )
        by_issue[key] = case.id
    store.add_servicedesk("1", "SUP", "Customer Support", accounts)
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    server, site = start_site(store)
    try:
        connector = site.connector()
        for typed in subjects("email"):
            records = list(connector.discover(_subject("email", typed)))
            issues = [by_issue[r.native_id["key"]] for r in records if r.location != "customers"]
            check("email", typed, issues, "Jira (issues)")
            customers = {
                int(r.native_id["account_id"][2:]) for r in records if r.location == "customers"
            }
            mine = {by_issue[f"SUP-{n}"] for n in customers}
            check("email", typed, mine, "Jira (customer accounts)")
    finally:
        server.stop()


# -- Marketplace -----------------------------------------------------------------------------


def test_marketplace_agrees_with_the_table(monkeypatch):
    from sandbox import marketplace_seed
    from sandbox.emulators.marketplace import MarketplaceStore
    from tests.test_marketplace_connector import connector, licence_of, serve

    store = MarketplaceStore(
        credentials=(marketplace_seed.SANDBOX_EMAIL, marketplace_seed.SANDBOX_TOKEN)
    )
    by_licence = {}
    for number, case in enumerate(cases("email"), start=1):
        # Atlassian keeps the address as the buyer typed it: one licence per stored spelling.
        store.licenses.append(licence_of(str(number), case.stored))
        by_licence[str(number)] = case.id
    with serve(store) as url, connector(url, monkeypatch) as marketplace:
        for typed in subjects("email"):
            records = list(marketplace.discover(_subject("email", typed)))
            found = [by_licence[r.native_id["addonLicenseId"]] for r in records]
            check("email", typed, found, "Marketplace (licences)")


# Padding beyond EDGE_PADDING (one whitespace character at either end).
WIDE_PADDING = {2000: "  al@example.com  ", 2001: "\t\tAL@Example.COM\r\n\r\n"}
LOOKUP_COLUMN = {
    "sqlite": (
        "ALTER TABLE contacts ADD COLUMN email_lookup TEXT GENERATED ALWAYS AS "
        "(lower(trim(email, ' ' || char(9) || char(10) || char(13) || char(160)))) VIRTUAL"
    ),
    "postgresql": (
        "ALTER TABLE contacts ADD COLUMN email_lookup text GENERATED ALWAYS AS "
        "(lower(btrim(email, E' \\t\\n\\r' || U&'\\00A0'))) STORED"
    ),
}


def test_sql_lookup_column_finds_any_padding(sandbox_url, tmp_path):
    """Runs of whitespace are beyond the default pre-filter; a trimmed, lower-cased column the
    mapping names (here a generated one, indexed) finds them, still through an index."""
    engine = sa.create_engine(sandbox_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(LOOKUP_COLUMN[engine.dialect.name])
        conn.exec_driver_sql("CREATE INDEX ix_contacts_email_lookup ON contacts (email_lookup)")
        for number, stored in WIDE_PADDING.items():
            conn.execute(
                sa.text("INSERT INTO contacts (id, email, name) VALUES (:id, :email, 'Al')"),
                {"id": number, "email": stored},
            )
    engine.dispose()
    subject = _subject("email", "al@example.com")

    def found(mapping) -> set[int]:
        connector = SqlConnector("onprem", mapping, sandbox_url)
        try:
            return {
                r.native_id["id"] for r in connector.discover(subject) if r.location == "contacts"
            }
        finally:
            connector.close()

    assert not found(load_mapping(ONPREM_MAPPING)) & set(WIDE_PADDING)
    data = yaml.safe_load(ONPREM_MAPPING.read_text(encoding="utf-8"))
    data["tables"]["contacts"]["identities"][0]["lookup_column"] = "email_lookup"
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "onprem.yaml")
    assert set(WIDE_PADDING) <= found(mapping)


def test_lookup_column_is_for_addresses_only(tmp_path):
    data = yaml.safe_load(ONPREM_MAPPING.read_text(encoding="utf-8"))
    data["tables"]["contacts"]["identities"][1]["lookup_column"] = "phone"
    with pytest.raises(MappingError, match="lookup_column is only for identities of kind email"):
        parse_mapping(yaml.safe_dump(data), tmp_path / "onprem.yaml")

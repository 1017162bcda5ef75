"""The SQL coverage survey on SQLite and PostgreSQL: a table the mapping does not list and a
column of a mapped table that holds addresses are named with the entry that would cover
them; dates, amounts and the mapped identities are not; values are counted, never kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from connectors import open_connector
from connectors.base import Surveying
from connectors.registry import kind
from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.coverage import survey
from dsrflow.mapping import load_mapping, parse_mapping
from sandbox.runtime import onprem_source, write_config
from tests.conftest import ONPREM_MAPPING

runner = CliRunner()


def _add_unmapped_data(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE newsletter (id INTEGER PRIMARY KEY, address VARCHAR(200), "
                "mobile VARCHAR(40), joined VARCHAR(20), note VARCHAR(200))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO newsletter VALUES "
                "(1, 'al@example.com', '+47 912 34 567', '2024-01-02', 'likes skiing'), "
                "(2, 'Kari.Nordmann@Example.COM', '98765432', '2024-02-03', NULL)"
            )
        )
        # A column the mapping does not name, in a mapped table.
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN support_email VARCHAR(200)"))
        conn.execute(sa.text("UPDATE customers SET support_email = 'help@acme.example'"))
        # Identifier-free text in an unmapped table: nothing to report.
        conn.execute(sa.text("CREATE TABLE products (id INTEGER PRIMARY KEY, name VARCHAR(80))"))
        conn.execute(sa.text("INSERT INTO products VALUES (1, 'Timesheets 2024-01-02')"))
    engine.dispose()


def test_sql_survey_names_unmapped_table_and_column(sandbox_url):
    _add_unmapped_data(sandbox_url)
    config = {"kind": "sql", "url": sandbox_url, "mapping": str(ONPREM_MAPPING)}
    source = kind("sql").settings.model_validate(config)
    with open_connector("onprem", source, load_mapping(ONPREM_MAPPING)) as connector:
        assert isinstance(connector, Surveying)
        findings = connector.survey()
    by_place = {f.place: f for f in findings}
    assert set(by_place) == {"newsletter", "customers.support_email"}
    table = by_place["newsletter"]
    assert table.what == "table"
    assert "address: 2 e-mail-like of 2 sampled" in table.evidence
    assert "mobile: 2 phone-like of 2 sampled" in table.evidence
    assert "joined" not in table.evidence and "note" not in table.evidence
    assert table.snippet.splitlines() == [
        "tables:",
        "  newsletter:",
        "    primary_key: [id]",
        "    identities:",
        "      - {column: address, kind: email}",
        "      - {column: mobile, kind: phone}",
    ]
    column = by_place["customers.support_email"]
    assert column.what == "column"
    assert column.snippet.endswith("- {column: support_email, kind: email}")
    # Counts and names only: no sampled value travels in a finding.
    text = repr(findings)
    assert "al@example.com" not in text and "912 34 567" not in text
    assert "help@acme.example" not in text


def test_the_sandbox_database_has_nothing_outside_its_mapping(onprem_config):
    report = survey(load_config(onprem_config))
    assert report.not_surveyed == {}
    assert report.surveyed == ["onprem"]
    assert report.findings == []
    assert report.open_findings == 0


def test_an_unreachable_database_is_not_surveyed_not_clean(tmp_path):
    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(f"sqlite:///{tmp_path / 'missing.db'}"), tmp_path / "out")
    report = survey(load_config(path))
    assert report.findings == []
    assert list(report.not_surveyed) == ["onprem"]
    assert report.open_findings == 1


@pytest.mark.parametrize(
    ("value", "email", "phone"),
    [
        ("al@example.com", True, False),
        ("write to al@example.com today", True, False),
        ("+47 912 34 567", False, True),
        ("2024-01-02", False, False),
        ("12.03.2024", False, False),
        ("Timesheets", False, False),
        ("al@", False, False),
    ],
)
def test_what_counts_as_identifier_like(value, email, phone):
    from connectors.sampling import is_email_like, is_phone_like

    assert (is_email_like(value), is_phone_like(value)) == (email, phone)


def test_the_snippets_cover_what_they_name(sandbox_sqlite_url):
    _add_unmapped_data(sandbox_sqlite_url)
    source = kind("sql").settings.model_validate(
        {"kind": "sql", "url": sandbox_sqlite_url, "mapping": str(ONPREM_MAPPING)}
    )
    mapping = yaml.safe_load(ONPREM_MAPPING.read_text("utf-8"))
    with open_connector("onprem", source, load_mapping(ONPREM_MAPPING)) as connector:
        findings = connector.survey()
    for finding in findings:
        for table, entry in yaml.safe_load(finding.snippet)["tables"].items():
            if table in mapping["tables"]:
                mapping["tables"][table].setdefault("identities", []).extend(entry["identities"])
            else:
                mapping["tables"][table] = entry
    covered = parse_mapping(yaml.safe_dump(mapping), Path("onprem-covered.yaml"))
    with open_connector("onprem", source, covered) as connector:
        assert connector.survey() == []


def test_dsr_coverage_exit_status(onprem_config, tmp_path):
    clean = runner.invoke(app, ["coverage", "--config", str(onprem_config)])
    assert clean.exit_code == 0, clean.output
    assert clean.output.splitlines() == [
        "ok onprem: nothing outside the mapping",
        "0 finding(s), 0 source(s) not surveyed",
    ]
    _add_unmapped_data(load_config(onprem_config).sources["onprem"].url)
    found = runner.invoke(app, ["coverage", "--config", str(onprem_config)])
    assert found.exit_code == 1, found.output
    assert "finding onprem: table newsletter: not in the mapping; address: 2 e-mail-like" in (
        found.output
    )
    missing = runner.invoke(app, ["coverage", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert missing.output.startswith("error: config file")

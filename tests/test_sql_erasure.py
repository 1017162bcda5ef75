"""Erasure on the on-prem database: the plan, the execution, idempotence, nobody else touched."""

import datetime as dt

import pytest
import sqlalchemy as sa

from connectors.base import Capability, capabilities
from connectors.sql.connector import SqlConnector
from connectors.sql.mapping import RestrictionMark
from dsrflow.mapping import load_mapping
from dsrflow.plan import Action, Outcome
from dsrflow.planning import (
    REASON_WIDTH,
    build_erasure_plan,
    build_restriction_plan,
    plan_counts,
    plan_notices,
    plan_table,
    record_ref,
)
from dsrflow.request import Subject
from tests.conftest import ONPREM_MAPPING

TODAY = dt.date(2026, 11, 22)


@pytest.fixture(autouse=True)
def hmac_key(monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "test-key")


def snapshot(url):
    engine = sa.create_engine(url)
    tables = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings().all()
            tables[name] = {r["id"] if "id" in r else tuple(r.values()): dict(r) for r in rows}
    engine.dispose()
    return tables


def plan_for(connector, email):
    records = list(connector.discover(Subject.from_raw([email])))
    return build_erasure_plan(records, {"onprem": connector.mapping}, TODAY)


def erasable(plan):
    """The actions the flows hand to ``erase`` (flows/changes.py): a KEEP stays with the plan."""
    return [a for a in plan if a.action in (Action.DELETE, Action.REDACT)]


AL = Subject.from_raw(["al@example.com"])


def by_record(plan):
    return {(a.location, a.native_id["id"]): a for a in plan}


def test_plan_follows_holds_sharing_and_erasure_modes(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    plan = by_record(plan_for(connector, "al@example.com"))
    connector.close()
    assert plan[("contacts", 1)].action == Action.REDACT
    assert plan[("contacts", 1)].fields == {
        "email": "hmac_sha256",
        "name": "fixed_text",
        "phone": "set_null",
        "role": "set_null",
    }
    assert plan[("usage_events", 1)].action == Action.DELETE
    assert plan[("consents", 1)].action == Action.DELETE
    invoice = plan[("invoices", 1)]
    assert invoice.action == Action.KEEP
    assert "Bookkeeping Act" in invoice.reason
    assert invoice.keep_until == dt.date(2030, 12, 31)  # 5 years from the end of 2025
    assert plan[("licenses", 1)].keep_until == dt.date(2029, 12, 31)
    customer = plan[("customers", 1)]
    assert customer.action == Action.KEEP
    assert customer.reason.startswith("also belongs to others")
    assert plan_counts(plan.values()) == {"delete": 5, "redact": 2, "keep": 5}


def test_plan_artifact_rows_hold_no_key_values(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    rows = plan_table(plan_for(connector, "al@example.com"))
    connector.close()
    assert all(r["record"].startswith("onprem:") and "id=" not in r["record"] for r in rows)


def test_plan_artifact_shows_shared_records_and_holds_with_their_end_dates(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    records = list(connector.discover(AL))
    connector.close()
    plan = build_erasure_plan(records, {"onprem": connector.mapping}, TODAY)
    shared = {r.record_id for r in records if r.shared}
    assert shared, "the sandbox has a customer row shared with another person"
    rows = plan_table(plan, shared)
    assert {r["record"] for r in rows if r["shared"]} == {
        record_ref(a) for a in plan if a.record_id in shared
    }
    assert all(len(str(r["reason"])) <= REASON_WIDTH for r in rows)  # fits a laptop screen
    notices = plan_notices(plan, shared)
    assert notices[0].startswith(f"{len(shared)} record(s) also belong to someone else")
    held = [a for a in plan if a.keep_until]
    assert held
    for action in held:
        assert any(f"kept until {action.keep_until.isoformat()}:" in line for line in notices)
    assert sum(int(line.split()[0]) for line in notices if " kept until " in line) == len(held)


def test_erasure_changes_exactly_the_plan_and_is_idempotent(sandbox_url):
    before = snapshot(sandbox_url)
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    plan = plan_for(connector, "al@example.com")
    report = connector.erase(erasable(plan), AL)
    assert report.complete
    assert report.count(Outcome.DONE) == 7
    after = snapshot(sandbox_url)

    # Nothing of anyone else changed: compare every row outside the plan.
    planned = {(a.location, a.native_id["id"]): a for a in plan}
    for table, rows in before.items():
        for key, row in rows.items():
            action = planned.get((table, key))
            if action is None or action.action == Action.KEEP:
                assert after[table].get(key) == row, (table, key)
            elif action.action == Action.DELETE:
                assert key not in after[table]
            else:
                changed = {c for c in row if after[table][key][c] != row[c]}
                assert changed <= set(action.fields)
    redacted = after["contacts"][4]
    assert redacted["email"].startswith("hmac:")
    assert redacted["name"] == "[erased]"
    assert redacted["phone"] is None
    assert after["contacts"][4]["customer_id"] == 2  # links kept

    # Discovering again finds nothing of the subject; a second run changes nothing.
    assert list(connector.discover(Subject.from_raw(["al@example.com"]))) == []
    again = connector.erase(erasable(plan), AL)
    assert again.complete
    assert again.count(Outcome.DONE) == 0
    assert snapshot(sandbox_url) == after
    connector.close()


def test_missing_hmac_key_stops_before_changing_anything(sandbox_url, monkeypatch):
    monkeypatch.delenv("DSRFLOW_HMAC_KEY")
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    plan = plan_for(connector, "al@example.com")  # deletes come first in execution order
    before = snapshot(sandbox_url)
    with pytest.raises(LookupError, match="DSRFLOW_HMAC_KEY"):
        connector.erase(erasable(plan), AL)
    connector.close()
    assert snapshot(sandbox_url) == before


def test_a_sql_source_can_do_every_right(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    connector.close()
    assert capabilities(connector) == set(Capability)


def test_actions_a_method_does_not_carry_out_are_answered_not_dropped(sandbox_url):
    connector = SqlConnector("onprem", load_mapping(ONPREM_MAPPING), sandbox_url)
    plan = plan_for(connector, "al@example.com")
    before = snapshot(sandbox_url)
    kept = next(a for a in plan if a.action == Action.KEEP)
    other = kept.model_copy(update={"action": Action.RECTIFY, "fields": {"name": "X"}})
    report = connector.erase([kept, other], AL)
    connector.close()
    assert [(r.record_id, r.outcome, r.detail) for r in report.results] == [
        (kept.record_id, Outcome.SKIPPED, f"kept: {kept.reason}"),
        (other.record_id, Outcome.FAILED, "cannot rectify here"),
    ]
    assert snapshot(sandbox_url) == before


def test_restriction_marks_rows_where_the_mapping_says_how_and_says_ledger_only_elsewhere(
    sandbox_url,
):
    engine = sa.create_engine(sandbox_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE contacts ADD COLUMN restricted BOOLEAN DEFAULT FALSE"))
    engine.dispose()
    mapping = load_mapping(ONPREM_MAPPING)
    contacts = mapping.tables["contacts"]
    mapping.tables["contacts"] = contacts.model_copy(
        update={"restriction": RestrictionMark(column="restricted")}
    )
    connector = SqlConnector("onprem", mapping, sandbox_url)
    plan = build_restriction_plan(connector.discover(AL))
    report = connector.restrict(plan, AL)
    again = connector.restrict(plan, AL)
    connector.close()
    outcomes = {r.record_id: (r.outcome, r.detail) for r in report.results}
    assert set(outcomes) == {a.record_id for a in plan}
    for action in plan:
        outcome, detail = outcomes[action.record_id]
        assert outcome == Outcome.DONE
        if action.location == "contacts":
            assert detail == "restrict ['restricted']"
        else:
            assert detail.startswith("restricted in the ledger only: table ")
    assert {r.outcome for r in again.results if r.record_id.startswith("onprem:contacts:")} == {
        Outcome.ALREADY_DONE
    }
    marked = snapshot(sandbox_url)["contacts"]
    assert {k for k, row in marked.items() if row["restricted"]} == {
        a.native_id["id"] for a in plan if a.location == "contacts"
    }

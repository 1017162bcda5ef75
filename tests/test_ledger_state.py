"""The ledger proves its tables, not only its audit table: edits behind its back, a rewritten
chain and a truncated one are all reported by ``verify``."""

import datetime as dt
import sqlite3

import pytest
import sqlalchemy as sa

from dsrflow.ledger import (
    GENESIS,
    Ledger,
    Status,
    audit_table,
    entry_hash,
    holds_table,
    requests_table,
    restrictions_table,
)
from dsrflow.plan import Action, PlannedAction
from dsrflow.request import Subject
from tests.test_ledger import make_request

SUBJECT = Subject.from_raw(["al@example.com"], ["+4791234567"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_database")


def held(record_id="onprem:invoices:7"):
    return PlannedAction(
        record_id=record_id,
        source="onprem",
        location="invoices",
        native_id={"id": 7},
        action=Action.DELETE,
        reason="Bookkeeping Act §13",
        keep_until=dt.date(2030, 12, 31),
    )


def busy(url, key=None):
    """A ledger with a request in progress, a restricted subject and a record on hold."""
    ledger = Ledger(url, key=key)
    ledger.open_request(make_request())
    ledger.set_status("DSR-2026-0001", Status.IN_PROGRESS)
    ledger.add_restriction(SUBJECT, "DSR-2026-0001", "Ingrid")
    ledger.add_holds("DSR-2026-0001", [held()])
    return ledger


def problems(ledger, **kwargs):
    return [str(p) for p in ledger.verify(**kwargs)]


def test_every_write_is_in_the_chain_and_verifies(ledger_url):
    ledger = busy(ledger_url)
    ledger.lift_restriction(SUBJECT, "DSR-2026-0002", "Ingrid")
    ledger.release_holds(["onprem:invoices:7"])
    ledger.set_status("DSR-2026-0001", Status.COMPLETED)
    assert ledger.verify() == []
    tables = [c["table"] for e in ledger.entries() for c in e.changes]
    assert tables.count("restrictions") == 4  # two identifiers in, two lifted
    assert tables.count("holds") == 2
    assert tables.count("requests") == 3


def test_the_chain_holds_no_identifier_in_clear(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.connect() as conn:
        text = " ".join(str(v) for row in conn.execute(sa.select(audit_table)) for v in row)
    assert "al@example.com" not in text
    assert "4791234567" not in text
    assert "onprem:invoices:7" not in text


def test_request_status_edited_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(requests_table.update().values(status="completed"))
    assert problems(ledger) == [
        "requests DSR-2026-0001: status is 'completed' in the table, "
        "'in_progress' by the audit chain"
    ]


def test_request_subject_edited_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(requests_table.update().values(subject='{"emails": [], "phones": []}'))
    assert problems(ledger) == [
        "requests DSR-2026-0001: subject differs from what the audit chain recorded"
    ]


def test_restrictions_deleted_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(restrictions_table.delete())
    found = problems(ledger)
    assert len(found) == 2
    assert all(
        p.startswith("restrictions ")
        and p.endswith(
            "(request DSR-2026-0001): an active restriction of the audit chain is "
            "missing from the table"
        )
        for p in found
    )


def test_restriction_lifted_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(restrictions_table.update().values(lifted_at=dt.datetime.now(dt.UTC)))
    found = problems(ledger)
    assert len(found) == 2
    assert all(
        "lifted_at is '" in p and "in the table, None by the audit chain" in p for p in found
    )


def test_hold_deleted_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(holds_table.delete())
    (found,) = problems(ledger)
    assert found.startswith("holds ")
    assert found.endswith(
        "(request DSR-2026-0001): a row of the audit chain is missing from the table"
    )


def test_request_inserted_by_hand(ledger_url):
    ledger = busy(ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(
            requests_table.insert().values(
                id="DSR-2026-0666",
                type="access",
                status="completed",
                subject="{}",
                received_at=dt.datetime.now(dt.UTC),
                due_at=dt.date.today(),
            )
        )
    assert problems(ledger) == ["requests DSR-2026-0666: in the table but never recorded"]


def test_sqlite3_shell_edit_of_the_issue(tmp_path):
    """The reproduction of issue 11 §5, with the sqlite3 module as the shell."""
    path = tmp_path / "ledger.db"
    busy(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("update requests set status='completed'")
        conn.execute("delete from restrictions")
    found = problems(Ledger(f"sqlite:///{path}"))
    assert found[0].startswith("requests DSR-2026-0001: status is 'completed' in the table")
    assert len(found) == 3


def rewrite_chain(ledger, from_seq, **values):
    """What someone with write access can do: change entry ``from_seq`` and recompute every
    hash from there on, so that the chain is consistent again."""
    with ledger.engine.begin() as conn:
        rows = conn.execute(sa.select(audit_table).order_by(audit_table.c.seq)).mappings().all()
        prev = GENESIS
        for row in rows:
            row = {**row, **(values if row["seq"] == from_seq else {})}
            if row["seq"] >= from_seq:
                fields = ("seq", "request_id", "at", "actor", "event", "details")
                new = entry_hash(*(row[f] for f in fields), prev, row["changes"])
                conn.execute(
                    audit_table.update()
                    .where(audit_table.c.seq == row["seq"])
                    .values(**{**values, "prev_hash": prev, "hash": new})
                    if row["seq"] == from_seq
                    else audit_table.update()
                    .where(audit_table.c.seq == row["seq"])
                    .values(prev_hash=prev, hash=new)
                )
                prev = new
            else:
                prev = row["hash"]


def test_consistent_rewrite_caught_by_the_head_kept_elsewhere(ledger_url):
    ledger = busy(ledger_url)
    kept = ledger.head()
    assert kept[0] == 4
    rewrite_chain(ledger, 3, actor="mallory")
    assert ledger.verify() == []  # the chain alone cannot tell
    assert problems(ledger, head=kept) == [
        "audit entry 4: differs from the head kept elsewhere: the chain was rewritten"
    ]


def test_truncation_caught_by_the_head_kept_elsewhere(ledger_url):
    ledger = busy(ledger_url)
    kept = ledger.head()
    with ledger.engine.begin() as conn:
        conn.execute(audit_table.delete().where(audit_table.c.seq == 4))
        conn.execute(holds_table.delete())
    assert ledger.verify() == []
    assert problems(ledger, head=kept) == [
        "audit entry 4: is missing: the chain ends at entry 3 (truncated)"
    ]


def test_keyed_chain_catches_a_rewrite_without_a_kept_head(ledger_url):
    ledger = busy(ledger_url, key=b"the ledger key")
    assert ledger.verify() == []
    rewrite_chain(ledger, 3, actor="mallory")
    assert problems(ledger) == [
        "audit entry 3: its keyed hash is wrong: not written with the ledger key",
        "audit entry 4: its keyed hash is wrong: not written with the ledger key",
    ]
    with ledger.engine.begin() as conn:
        conn.execute(audit_table.update().values(mac=None))
    assert problems(ledger)[0] == (
        "audit entry 1: carries no keyed hash: written without the ledger key"
    )


def test_ledger_key_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("DSRFLOW_LEDGER_KEY", "from the environment")
    busy(url)
    assert Ledger(url).verify() == []
    assert problems(Ledger(url, key=b"another key"))[0] == (
        "audit entry 1: its keyed hash is wrong: not written with the ledger key"
    )


def test_a_ledger_from_before_row_changes_is_adopted(ledger_url):
    """A ledger written by the previous version (no changes/mac/closed_reason columns) opens,
    adopts its tables in one entry, and verifies; edits after that are caught."""
    busy(ledger_url).close()
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        for table, column in (
            ("audit", "changes"),
            ("audit", "mac"),
            ("requests", "closed_reason"),
        ):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        prev = GENESIS
        rows = conn.exec_driver_sql(
            "SELECT seq, request_id, at, actor, event, details FROM audit ORDER BY seq"
        )
        for row in rows.all():
            new = entry_hash(*row, prev)
            conn.execute(
                sa.text("UPDATE audit SET prev_hash = :prev, hash = :new WHERE seq = :seq"),
                {"prev": prev, "new": new, "seq": row[0]},
            )
            prev = new
    engine.dispose()
    upgraded = Ledger(ledger_url)
    assert upgraded.verify() == []
    adopted = list(upgraded.entries())[-1]
    assert (adopted.event, adopted.details) == ("state_adopted", {"rows": 4})
    with upgraded.engine.begin() as conn:
        conn.execute(requests_table.update().values(status="completed"))
    assert problems(upgraded)[0].startswith("requests DSR-2026-0001: status is 'completed'")

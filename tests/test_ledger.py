import datetime as dt
import itertools

import sqlalchemy as sa

from dsrflow.ledger import Ledger, Status, audit_table, requests_table
from dsrflow.request import DataSubjectRequest, Extension, RequestType, Subject


def make_request(request_id="DSR-2026-0001", received=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)):
    return DataSubjectRequest(
        id=request_id,
        type=RequestType.ACCESS,
        subject=Subject.from_raw(["al@example.com"]),
        received_at=received,
    )


def filled(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.open_request(make_request())
    ledger.set_status("DSR-2026-0001", Status.IN_PROGRESS, sources=["onprem"])
    ledger.record("DSR-2026-0001", "exported", records=12)
    ledger.set_status("DSR-2026-0001", Status.COMPLETED)
    return ledger


def test_chain_intact_and_events_in_order(tmp_path):
    ledger = filled(tmp_path)
    assert ledger.verify() == []
    events = [e.event for e in ledger.entries("DSR-2026-0001")]
    assert events == ["received", "status:in_progress", "exported", "status:completed"]
    entries = list(ledger.entries())
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))


def test_open_request_is_idempotent(tmp_path):
    ledger = filled(tmp_path)
    ledger.open_request(make_request())
    assert [e.event for e in ledger.entries()].count("received") == 1


def test_changed_entry_detected(tmp_path):
    ledger = filled(tmp_path)
    with ledger.engine.begin() as conn:
        conn.execute(
            audit_table.update().where(audit_table.c.seq == 3).values(details='{"records":0}')
        )
    problems = ledger.verify()
    assert str(problems[0]) == "audit entry 3: was changed after it was written"


def test_removed_entry_detected(tmp_path):
    ledger = filled(tmp_path)
    with ledger.engine.begin() as conn:
        conn.execute(audit_table.delete().where(audit_table.c.seq == 2))
    problems = [str(p) for p in ledger.verify()]
    assert problems[0] == "audit entry 3: entry 2 is missing"


def test_reordered_entries_detected(tmp_path):
    ledger = filled(tmp_path)
    with ledger.engine.begin() as conn:
        rows = {
            r.seq: dict(r._mapping)
            for r in conn.execute(sa.select(audit_table).where(audit_table.c.seq.in_([2, 3])))
        }
        for seq, other in ((2, 3), (3, 2)):
            values = {k: v for k, v in rows[other].items() if k != "seq"}
            conn.execute(audit_table.update().where(audit_table.c.seq == seq).values(**values))
    assert str(ledger.verify()[0]) == "audit entry 2: does not follow the entry before it"


def test_open_requests_overdue_first(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.open_request(make_request("DSR-2026-0001", dt.datetime(2026, 10, 1, tzinfo=dt.UTC)))
    ledger.open_request(make_request("DSR-2026-0002", dt.datetime(2026, 11, 20, tzinfo=dt.UTC)))
    ledger.open_request(make_request("DSR-2026-0003", dt.datetime(2026, 9, 1, tzinfo=dt.UTC)))
    ledger.set_status("DSR-2026-0003", Status.COMPLETED)
    rows = ledger.open_requests(today=dt.date(2026, 11, 22))
    assert [(r["id"], r["days_left"]) for r in rows] == [
        ("DSR-2026-0001", -21),
        ("DSR-2026-0002", 28),
    ]
    with ledger.engine.begin() as conn:
        closed = conn.execute(
            sa.select(requests_table.c.closed_at).where(requests_table.c.id == "DSR-2026-0003")
        ).scalar_one()
    assert closed is not None


def test_extension_moves_due_date():
    request = make_request().model_copy(update={"extension": Extension(reason="many sources")})
    assert request.due_at == dt.date(2027, 1, 1)


def test_deadline_extended_once_within_the_first_month(tmp_path):
    import pytest

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.open_request(make_request("DSR-2026-0001", dt.datetime(2026, 10, 1, tzinfo=dt.UTC)))
    ledger.open_request(make_request("DSR-2026-0002", dt.datetime(2026, 9, 1, tzinfo=dt.UTC)))
    reason = Extension(reason="many sources")
    due = ledger.extend("DSR-2026-0001", reason, "Ingrid", today=dt.date(2026, 10, 20))
    assert due == dt.date(2027, 1, 1)  # one month, then two more
    rows = {r["id"]: r for r in ledger.open_requests(today=dt.date(2026, 10, 20))}
    assert rows["DSR-2026-0001"]["due_at"] == dt.date(2027, 1, 1)
    with pytest.raises(ValueError, match="already extended"):
        ledger.extend("DSR-2026-0001", reason, "Ingrid", today=dt.date(2026, 10, 21))
    with pytest.raises(ValueError, match="within the first month"):
        ledger.extend("DSR-2026-0002", reason, "Ingrid", today=dt.date(2026, 10, 20))
    ledger.set_status("DSR-2026-0002", Status.COMPLETED)
    with pytest.raises(ValueError, match="closed"):
        ledger.extend("DSR-2026-0002", reason, "Ingrid", today=dt.date(2026, 9, 5))
    with pytest.raises(LookupError, match="no request DSR-2026-0009"):
        ledger.extend("DSR-2026-0009", reason, "Ingrid")
    extended = [e for e in ledger.entries() if e.event == "deadline_extended"]
    assert [(e.request_id, e.actor, e.details) for e in extended] == [
        ("DSR-2026-0001", "Ingrid", {"months": 2, "due_at": "2027-01-01"})
    ]
    assert ledger.verify() == []

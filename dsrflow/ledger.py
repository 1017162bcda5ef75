"""The request ledger: every request with its status and deadline, and an append-only audit
trail in which each entry holds the SHA-256 of the one before it (a hash chain), so that an
entry changed, removed or reordered afterwards shows.

Any SQLAlchemy URL; SQLite by default. Audit details hold counts and references, never record
contents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from dsrflow.plan import PlannedAction
from dsrflow.request import DataSubjectRequest, Extension, Subject, due_date

metadata = sa.MetaData()

requests_table = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("subject", sa.Text, nullable=False, comment="JSON: the request's own identifiers"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.Date, nullable=False),
    sa.Column("extended_due_at", sa.Date),
    sa.Column("extension_reason", sa.Text),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
)

audit_table = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("request_id", sa.String(40), index=True),
    sa.Column("at", sa.String(40), nullable=False, comment="UTC ISO 8601"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("details", sa.Text, nullable=False, comment="canonical JSON"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

restrictions_table = sa.Table(
    "restrictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("identifier", sa.String(320), nullable=False, index=True, comment="kind:value"),
    sa.Column("request_id", sa.String(40), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lifted_at", sa.DateTime(timezone=True)),
    sa.Column("lifted_by_request", sa.String(40)),
)

holds_table = sa.Table(
    "holds",
    metadata,
    sa.Column("record_id", sa.String(500), primary_key=True),
    sa.Column("request_id", sa.String(40), nullable=False),
    sa.Column("action", sa.Text, nullable=False, comment="JSON: the action due when it ends"),
    sa.Column("keep_until", sa.Date, nullable=False, index=True),
    sa.Column("released_at", sa.DateTime(timezone=True)),
)

GENESIS = "0" * 64


class Status(StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    request_id: str | None
    at: str
    actor: str
    event: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.problem}"


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    seq: int, request_id: str | None, at: str, actor: str, event: str, details: str, prev: str
) -> str:
    payload = json.dumps([seq, request_id, at, actor, event, details, prev], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Ledger:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- requests ---------------------------------------------------------------------------

    def open_request(self, request: DataSubjectRequest, actor: str = "dsrflow") -> None:
        """Record a request as received (idempotent: a rerun of the same request is fine)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(requests_table.c.id).where(requests_table.c.id == request.id)
            ).first()
            if exists:
                return
            conn.execute(
                requests_table.insert().values(
                    id=request.id,
                    type=request.type.value,
                    status=Status.OPEN.value,
                    subject=json.dumps(
                        {
                            "emails": list(request.subject.emails),
                            "phones": list(request.subject.phones),
                        }
                    ),
                    received_at=request.received_at,
                    due_at=request.due_at,
                )
            )
            self._append(conn, request.id, actor, "received", {"type": request.type.value})

    def set_status(
        self, request_id: str, status: Status, actor: str = "dsrflow", **details: Any
    ) -> None:
        closed = status in (Status.COMPLETED, Status.REJECTED)
        with self.engine.begin() as conn:
            conn.execute(
                requests_table.update()
                .where(requests_table.c.id == request_id)
                .values(status=status.value, closed_at=dt.datetime.now(dt.UTC) if closed else None)
            )
            self._append(conn, request_id, actor, f"status:{status.value}", details)

    def record(
        self, request_id: str | None, event: str, actor: str = "dsrflow", **details: Any
    ) -> None:
        """Append one audit entry (counts and references only, never record contents)."""
        with self.engine.begin() as conn:
            self._append(conn, request_id, actor, event, details)

    def extend(
        self,
        request_id: str,
        extension: Extension,
        actor: str,
        today: dt.date | None = None,
    ) -> dt.date:
        """Art. 12(3): extend an open request's deadline by up to two months, once, and only
        while the first month runs (the subject must be told, with the reason, within it).
        Returns the new due date."""
        today = today or dt.datetime.now(dt.UTC).date()
        with self.engine.begin() as conn:
            row = (
                conn.execute(sa.select(requests_table).where(requests_table.c.id == request_id))
                .mappings()
                .first()
            )
            if row is None:
                raise LookupError(f"no request {request_id} in the ledger")
            if row["status"] in (Status.COMPLETED.value, Status.REJECTED.value):
                raise ValueError(f"{request_id} is closed ({row['status']}); nothing to extend")
            if row["extended_due_at"] is not None:
                raise ValueError(
                    f"{request_id} was already extended to {row['extended_due_at']}; "
                    "Art. 12(3) allows one extension of at most two months"
                )
            if today > row["due_at"]:
                raise ValueError(
                    f"{request_id} was due {row['due_at']}: an extension must be decided and "
                    "told to the subject within the first month"
                )
            due = due_date(row["received_at"], extension.months)
            conn.execute(
                requests_table.update()
                .where(requests_table.c.id == request_id)
                .values(extended_due_at=due, extension_reason=extension.reason)
            )
            self._append(
                conn,
                request_id,
                actor,
                "deadline_extended",
                {"months": extension.months, "due_at": due.isoformat()},
            )
        return due

    def open_requests(self, today: dt.date | None = None) -> list[dict[str, Any]]:
        """Open requests with days left, overdue first."""
        today = today or dt.datetime.now(dt.UTC).date()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(requests_table).where(
                    requests_table.c.status.not_in([Status.COMPLETED.value, Status.REJECTED.value])
                )
            ).mappings()
            result = []
            for row in rows:
                due = row["extended_due_at"] or row["due_at"]
                result.append(
                    {
                        "id": row["id"],
                        "type": row["type"],
                        "status": row["status"],
                        "due_at": due,
                        "days_left": (due - today).days,
                    }
                )
        return sorted(result, key=lambda r: (r["days_left"], r["id"]))

    def request(self, request_id: str) -> DataSubjectRequest | None:
        """The request as the ledger received it (its identifiers and received time)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(requests_table).where(requests_table.c.id == request_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        subject = json.loads(row["subject"])
        return DataSubjectRequest(
            id=row["id"],
            type=row["type"],
            subject=Subject.from_raw(subject["emails"], subject["phones"]),
            received_at=row["received_at"],
        )

    # -- restrictions (Art. 18) -------------------------------------------------------------

    def add_restriction(self, subject: Subject, request_id: str, actor: str) -> None:
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            active = self._active_restrictions(conn)
            new = [str(i) for i in subject.identifiers if str(i) not in active]
            if new:
                conn.execute(
                    restrictions_table.insert(),
                    [{"identifier": i, "request_id": request_id, "since": now} for i in new],
                )
            self._append(conn, request_id, actor, "restricted", {"identifiers": len(new)})

    def lift_restriction(self, subject: Subject, request_id: str, actor: str) -> int:
        """Lift the subject's restriction: a logged action of its own. Returns how many."""
        with self.engine.begin() as conn:
            lifted = conn.execute(
                restrictions_table.update()
                .where(restrictions_table.c.identifier.in_([str(i) for i in subject.identifiers]))
                .where(restrictions_table.c.lifted_at.is_(None))
                .values(lifted_at=dt.datetime.now(dt.UTC), lifted_by_request=request_id)
            ).rowcount
            self._append(conn, request_id, actor, "restriction_lifted", {"identifiers": lifted})
        return int(lifted)

    def is_restricted(self, subject: Subject) -> bool:
        return self.restricted_since(subject) is not None

    def restricted_since(self, subject: Subject) -> dt.datetime | None:
        """When the subject's processing was first restricted, if it still is."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.min(restrictions_table.c.since)).where(
                    restrictions_table.c.identifier.in_([str(i) for i in subject.identifiers]),
                    restrictions_table.c.lifted_at.is_(None),
                )
            ).scalar_one()

    def restricted_identifiers(self) -> set[str]:
        with self.engine.connect() as conn:
            return self._active_restrictions(conn)

    @staticmethod
    def _active_restrictions(conn: sa.Connection) -> set[str]:
        rows = conn.execute(
            sa.select(restrictions_table.c.identifier).where(
                restrictions_table.c.lifted_at.is_(None)
            )
        )
        return {r.identifier for r in rows}

    # -- records kept under a legal hold -----------------------------------------------------

    def add_holds(self, request_id: str, due: list[PlannedAction], actor: str = "dsrflow") -> None:
        """Queue kept records for erasure when their hold ends (restricted until then)."""
        with self.engine.begin() as conn:
            known = {
                r.record_id
                for r in conn.execute(
                    sa.select(holds_table.c.record_id).where(
                        holds_table.c.record_id.in_([a.record_id for a in due])
                    )
                )
            }
            new = [a for a in due if a.record_id not in known and a.keep_until]
            if new:
                conn.execute(
                    holds_table.insert(),
                    [
                        {
                            "record_id": a.record_id,
                            "request_id": request_id,
                            "action": a.model_dump_json(),
                            "keep_until": a.keep_until,
                        }
                        for a in new
                    ],
                )
            self._append(conn, request_id, actor, "holds_queued", {"records": len(new)})

    def due_holds(self, today: dt.date) -> list[tuple[str, PlannedAction]]:
        """(request id, action) of every hold that has ended and is not yet released."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(holds_table.c.request_id, holds_table.c.action).where(
                    holds_table.c.keep_until <= today, holds_table.c.released_at.is_(None)
                )
            ).all()
        return [(r.request_id, PlannedAction.model_validate_json(r.action)) for r in rows]

    def release_holds(self, record_ids: list[str], actor: str = "dsrflow") -> None:
        with self.engine.begin() as conn:
            conn.execute(
                holds_table.update()
                .where(holds_table.c.record_id.in_(record_ids))
                .values(released_at=dt.datetime.now(dt.UTC))
            )
            self._append(conn, None, actor, "holds_released", {"records": len(record_ids)})

    # -- the audit chain --------------------------------------------------------------------

    def _append(
        self,
        conn: sa.Connection,
        request_id: str | None,
        actor: str,
        event: str,
        details: dict[str, Any],
    ) -> None:
        last = conn.execute(
            sa.select(audit_table.c.seq, audit_table.c.hash)
            .order_by(audit_table.c.seq.desc())
            .limit(1)
        ).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        at = dt.datetime.now(dt.UTC).isoformat()
        text = _canonical(details)
        conn.execute(
            audit_table.insert().values(
                seq=seq,
                request_id=request_id,
                at=at,
                actor=actor,
                event=event,
                details=text,
                prev_hash=prev,
                hash=entry_hash(seq, request_id, at, actor, event, text, prev),
            )
        )

    def entries(self, request_id: str | None = None) -> Iterator[AuditEntry]:
        query = sa.select(audit_table).order_by(audit_table.c.seq)
        if request_id:
            query = query.where(audit_table.c.request_id == request_id)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield AuditEntry(**{**row, "details": json.loads(row["details"])})

    def verify(self) -> list[ChainProblem]:
        """Every break in the chain; the first one is where tampering starts."""
        problems: list[ChainProblem] = []
        prev = GENESIS
        expected_seq = 1
        with self.engine.connect() as conn:
            rows: Sequence[Any] = conn.execute(
                sa.select(audit_table).order_by(audit_table.c.seq)
            ).all()
        for row in rows:
            if row.seq != expected_seq:
                problems.append(ChainProblem(row.seq, f"entry {expected_seq} is missing"))
            if row.prev_hash != prev:
                problems.append(ChainProblem(row.seq, "does not follow the entry before it"))
            recomputed = entry_hash(
                row.seq, row.request_id, row.at, row.actor, row.event, row.details, row.prev_hash
            )
            if recomputed != row.hash:
                problems.append(ChainProblem(row.seq, "was changed after it was written"))
            prev = row.hash
            expected_seq = row.seq + 1
        return problems

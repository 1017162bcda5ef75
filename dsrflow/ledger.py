"""The request ledger: every request with its status and deadline, and an append-only audit
trail in which each entry holds the SHA-256 of the one before it (a hash chain), so that an
entry changed, removed or reordered afterwards shows.

The chain proves the tables too: every write to ``requests``, ``restrictions`` and ``holds``
goes through one place that records the row change in the chain entry written with it, and
``verify`` replays the chain and compares (dsrflow/ledger_state.py). A consistent rewrite of the
whole chain shows against a head kept elsewhere (``anchor()``, printed on receipts) or, with a
ledger key, against the HMAC every entry carries.

Any SQLAlchemy URL; SQLite by default. Appends are serialised: SQLite write transactions begin
IMMEDIATE and wait for each other, PostgreSQL ones take an advisory lock. Audit details hold
counts and references, never record contents; personal data in row changes is a digest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa

from dsrflow.errors import DsrflowError
from dsrflow.identifiers import Identifier
from dsrflow.ledger_state import StateProblem, compare, replay, row_change, table_state
from dsrflow.plan import PlannedAction
from dsrflow.request import DataSubjectRequest, Extension, Subject, due_date

if TYPE_CHECKING:
    from dsrflow.config import Config

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
    sa.Column("closed_reason", sa.Text, comment="why it was rejected or withdrawn"),
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
    sa.Column("changes", sa.Text, comment="canonical JSON: the row changes of this entry"),
    sa.Column("mac", sa.String(64), comment="HMAC-SHA256 of hash under the ledger key"),
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

# Requests read from the service desk or a mailbox (dsrflow/intake.py): one row per ticket or
# mail, so that no intake run opens the same one twice.
intake_table = sa.Table(
    "intake",
    metadata,
    sa.Column("key", sa.String(600), primary_key=True, comment="channel:reference"),
    sa.Column("request_id", sa.String(40), nullable=False, unique=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column(
        "reference", sa.String(560), nullable=False, comment="issue key, mail conversation id"
    ),
)

# The hint of a queued hold's action that names the subject (flows/changes.py ``after_hold``);
# dropped from the action when the hold is released.
HELD_FOR = "subject"

STATE_TABLES = {t.name: t for t in (requests_table, restrictions_table, holds_table, intake_table)}
GENESIS = "0" * 64
LEDGER_KEY_ENV = "DSRFLOW_LEDGER_KEY"
# Any constant: the one advisory lock that serialises appends to a PostgreSQL ledger.
PG_APPEND_LOCK = 0x44535246
SQLITE_BUSY_TIMEOUT_S = 60
_WRITE = "dsrflow_ledger_write"
_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")
# Told (ledger, request id) after each committed write about a request. A flow run sets it to
# publish the case page (flows/case_page.py); the ledger itself knows nothing of Prefect.
on_request_change: ContextVar[Callable[[Ledger, str], None] | None] = ContextVar(
    "dsrflow_on_request_change", default=None
)


class LedgerError(DsrflowError, ValueError):
    """The ledger cannot be opened or written; the message names it (no password)."""


class UnknownRequest(LedgerError, LookupError):
    """The ledger has no such request (or no longer the subject's identifiers for it)."""


class Status(StrEnum):
    DRAFT = "draft"  # a dry run's request: never overdue, opened for real by a later run
    RECEIVED = "received"  # read by the intake flow; the officer has not confirmed it yet
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_MANUAL = "awaiting_manual"  # a manual source's answer is missing (dsrflow/manual.py)
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"


CLOSED = frozenset({Status.COMPLETED, Status.REJECTED, Status.WITHDRAWN})
NEEDS_REASON = frozenset({Status.REJECTED, Status.WITHDRAWN})
# Requests nothing will resume: closed ones and dry runs' drafts.
SETTLED = frozenset({*CLOSED, Status.DRAFT})


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
    changes: list[dict[str, Any]] = field(default_factory=list)
    mac: str | None = None


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.problem}"


Problem = ChainProblem | StateProblem


def _canonical(details: Any) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    seq: int,
    request_id: str | None,
    at: str,
    actor: str,
    event: str,
    details: str,
    prev: str,
    changes: str | None = None,
) -> str:
    fields: list[Any] = [seq, request_id, at, actor, event, details, prev]
    if changes is not None:  # entries written before row changes were recorded hash as then
        fields.append(changes)
    payload = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def entry_mac(key: bytes, hash_: str) -> str:
    return hmac.new(key, hash_.encode("ascii"), hashlib.sha256).hexdigest()


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as ``dsr ledger head`` prints it."""
    match = _ANCHOR.match(text.strip())
    if not match:
        raise LedgerError(
            f"a chain head must be SEQ:HASH as `dsr ledger head` prints it "
            f"(e.g. 42:{'ab' * 32}), not {text!r}"
        )
    return int(match[1]), match[2]


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite stores a datetime's wall time and drops its zone: always hand it UTC."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _subject_json(subject: Subject) -> str:
    stored: dict[str, list[str]] = {"emails": list(subject.emails), "phones": list(subject.phones)}
    if subject.others:  # e.g. jira_account_id:5b10… (rows without any have no key)
        stored["others"] = [str(i) for i in subject.others]
    return json.dumps(stored)


def _released(action: str) -> str:
    """A queued hold's action (JSON) without the subject it named."""
    done = PlannedAction.model_validate_json(action)
    hints = {k: v for k, v in done.hints.items() if k != HELD_FOR}
    return done.model_copy(update={"hints": hints}).model_dump_json()


def _others(stored: dict[str, Any]) -> list[str]:
    """A stored subject's other identifiers as ``kind:value`` (none in rows before them)."""
    return list(stored.get("others") or [])


class Ledger:
    def __init__(self, url: str, key: bytes | None = None) -> None:
        """``key``: the ledger key that signs every entry (default: $DSRFLOW_LEDGER_KEY)."""
        env_key = os.environ.get(LEDGER_KEY_ENV)
        self.key = key or (env_key.encode("utf-8") if env_key else None)
        sa_url = sa.make_url(url)
        is_sqlite = sa_url.get_backend_name() == "sqlite"
        try:
            if is_sqlite:
                _private_sqlite_file(sa_url.database)
            self.engine = sa.create_engine(
                sa_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S} if is_sqlite else {}
            )
            if is_sqlite:
                _begin_sqlite_writes_immediately(self.engine)
            self._writer = self.engine.execution_options(**{_WRITE: True})
            self._changed: set[str] = set()
            with self._writing() as conn:
                metadata.create_all(conn)
                self._upgrade(conn)
        except (OSError, sa.exc.OperationalError) as exc:
            reason = getattr(exc, "orig", None) or getattr(exc, "strerror", None) or exc
            shown = sa_url.render_as_string(hide_password=True)
            raise LedgerError(
                f"the ledger {shown} (ledger_url) cannot be opened for writing: {reason}"
            ) from exc

    @classmethod
    def from_config(cls, config: Config) -> Ledger:
        """The config's ledger, with the config's ``ledger_key``, if any."""
        return cls(config.ledger_url, key=config.ledger_secret())

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """One write transaction; writers wait for each other, so seq numbers never clash."""
        with self._writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_APPEND_LOCK)))
            yield conn
        listener = on_request_change.get()
        changed, self._changed = self._changed, set()
        if listener is not None:
            for request_id in sorted(changed):
                listener(self, request_id)

    # -- requests ---------------------------------------------------------------------------

    def open_request(
        self, request: DataSubjectRequest, actor: str = "dsrflow", draft: bool = False
    ) -> None:
        """Record a request as received. A rerun of the same request (same id, type and
        subject) is fine; the same id for another type or subject is refused. ``draft``: a
        dry run's request, never overdue; a later run that is not a draft opens it for real,
        with the time it was first received."""
        with self._writing() as conn:
            row = self._request(conn, request.id)
            if row is None:
                values = {
                    "type": request.type.value,
                    "status": (Status.DRAFT if draft else Status.OPEN).value,
                    "subject": _subject_json(request.subject),
                    "received_at": _utc(request.received_at),
                    "due_at": request.due_at,
                    "extended_due_at": None,
                    "extension_reason": None,
                    "closed_at": None,
                    "closed_reason": None,
                }
                inserted = self._insert(conn, requests_table, {"id": request.id, **values})
                details = {"type": request.type.value, **({"draft": True} if draft else {})}
                self._append(conn, request.id, actor, "received", details, [inserted])
                return
            _check_same_request(row, request)
            if row["status"] == Status.DRAFT.value and not draft:
                change = self._update(conn, requests_table, request.id, status=Status.OPEN.value)
                self._append(conn, request.id, actor, "status:open", {"from": "draft"}, [change])

    def set_status(
        self, request_id: str, status: Status, actor: str = "dsrflow", **details: Any
    ) -> None:
        closed = status in CLOSED
        with self._writing() as conn:
            row = self._request(conn, request_id)
            if row and row["status"] == Status.DRAFT.value and status is Status.FAILED:
                # A dry run that fails leaves no open (soon overdue) request behind.
                self._append(conn, request_id, actor, f"status:{status.value}", details)
                return
            change = self._update(
                conn,
                requests_table,
                request_id,
                status=status.value,
                closed_at=dt.datetime.now(dt.UTC) if closed else None,
            )
            self._append(conn, request_id, actor, f"status:{status.value}", details, [change])

    def close_request(
        self, request_id: str, status: Status, actor: str, reason: str | None = None
    ) -> None:
        """Close a request as completed, rejected (Art. 12(5): manifestly unfounded or
        excessive) or withdrawn by the subject; the last two need the reason, which the
        ledger keeps."""
        if status not in CLOSED:
            raise LedgerError(
                f"a request is closed as completed, rejected or withdrawn, not {status.value}"
            )
        reason = (reason or "").strip() or None
        if status in NEEDS_REASON and not reason:
            raise LedgerError(f"closing {request_id} as {status.value} needs a reason")
        with self._writing() as conn:
            row = self._request(conn, request_id)
            if row is None:
                raise UnknownRequest(f"no request {request_id} in the ledger")
            if row["status"] in CLOSED:
                raise LedgerError(f"{request_id} is already closed ({row['status']})")
            change = self._update(
                conn,
                requests_table,
                request_id,
                status=status.value,
                closed_at=dt.datetime.now(dt.UTC),
                closed_reason=reason,
            )
            self._append(conn, request_id, actor, f"status:{status.value}", {}, [change])

    def record(
        self, request_id: str | None, event: str, *, actor: str = "dsrflow", **details: Any
    ) -> None:
        """Append one audit entry (counts and references only, never record contents)."""
        with self._writing() as conn:
            self._append(conn, request_id, actor, event, details)

    # -- intake: requests read from the service desk or a mailbox ------------------------------

    def receive(
        self,
        request_id: str,
        channel: str,
        reference: str,
        subject: Subject,
        received_at: dt.datetime,
        asked: str,
        actor: str = "intake",
    ) -> bool:
        """Open a request read by the intake, ``received`` until the officer confirms it, with
        the ticket's or mail's own time (the deadline counts from it) and the right the text
        asks for (``asked``: a request type or ``unclear``). False: this channel's
        ``reference`` was opened before (nothing written)."""
        key = f"{channel}:{reference}"
        with self._writing() as conn:
            known = conn.execute(
                sa.select(intake_table.c.request_id).where(intake_table.c.key == key)
            ).first()
            if known is not None:
                return False
            if self._request(conn, request_id) is not None:
                raise LedgerError(f"request id {request_id} is taken: draw another")
            received = _utc(received_at)
            inserted = self._insert(
                conn,
                requests_table,
                {
                    "id": request_id,
                    "type": asked,
                    "status": Status.RECEIVED.value,
                    "subject": _subject_json(subject),
                    "received_at": received,
                    "due_at": due_date(received),
                    "extended_due_at": None,
                    "extension_reason": None,
                    "closed_at": None,
                    "closed_reason": None,
                },
            )
            linked = self._insert(
                conn,
                intake_table,
                {"key": key, "request_id": request_id, "channel": channel, "reference": reference},
            )
            details = {"type": asked, "channel": channel}
            self._append(conn, request_id, actor, "received", details, [inserted, linked])
        return True

    def confirm_received(
        self, request_id: str, request_type: str, subject: Subject, actor: str, note: str = ""
    ) -> None:
        """The officer's confirmation of a request the intake opened: its type and the
        subject's identifiers; the request is open from now on (its received time stays)."""
        with self._writing() as conn:
            row = self._request(conn, request_id)
            _awaiting_confirmation(row, request_id)
            change = self._update(
                conn,
                requests_table,
                request_id,
                type=request_type,
                status=Status.OPEN.value,
                subject=_subject_json(subject),
            )
            details = {"type": request_type, "identifiers": len(subject.identifiers), "note": note}
            self._append(conn, request_id, actor, "intake_confirmed", details, [change])

    def received_subject(self, request_id: str) -> tuple[str, Subject]:
        """A request awaiting confirmation: the type the intake read and the requester's
        identifiers (as stored; an intake row may hold none, or a Jira account id only)."""
        with self.engine.connect() as conn:
            row = self._request(conn, request_id)
        row = _awaiting_confirmation(row, request_id)
        stored = json.loads(row["subject"])
        others = tuple(
            Identifier(kind=kind, value=value)
            for kind, _, value in (o.partition(":") for o in _others(stored))
        )
        subject = Subject(
            emails=tuple(stored["emails"]), phones=tuple(stored["phones"]), others=others
        )
        return row["type"], subject

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
        with self._writing() as conn:
            row = self._request(conn, request_id)
            if row is None:
                raise UnknownRequest(f"no request {request_id} in the ledger")
            if row["status"] in CLOSED:
                raise LedgerError(f"{request_id} is closed ({row['status']}); nothing to extend")
            if row["extended_due_at"] is not None:
                raise LedgerError(
                    f"{request_id} was already extended to {row['extended_due_at']}; "
                    "Art. 12(3) allows one extension of at most two months"
                )
            if today > row["due_at"]:
                raise LedgerError(
                    f"{request_id} was due {row['due_at']}: an extension must be decided and "
                    "told to the subject within the first month"
                )
            due = due_date(_utc(row["received_at"]), extension.months)
            change = self._update(
                conn,
                requests_table,
                request_id,
                extended_due_at=due,
                extension_reason=extension.reason,
            )
            self._append(
                conn,
                request_id,
                actor,
                "deadline_extended",
                {"months": extension.months, "due_at": due.isoformat()},
                [change],
            )
        return due

    def open_requests(
        self, today: dt.date | None = None, include_closed: bool = False
    ) -> list[dict[str, Any]]:
        """Open requests with days left, overdue first. Drafts (dry runs) are not open;
        ``include_closed`` lists them and closed requests too, after the open ones, with
        ``days_left`` None."""
        today = today or dt.datetime.now(dt.UTC).date()
        query = sa.select(requests_table)
        if not include_closed:
            shelved = [s.value for s in (*CLOSED, Status.DRAFT)]
            query = query.where(requests_table.c.status.not_in(shelved))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        result = []
        for row in rows:
            due = row["extended_due_at"] or row["due_at"]
            counts = row["status"] not in (*CLOSED, Status.DRAFT)
            result.append(
                {
                    "id": row["id"],
                    "type": row["type"],
                    "status": row["status"],
                    "due_at": due,
                    "days_left": (due - today).days if counts else None,
                    "closed_at": _utc(row["closed_at"]) if row["closed_at"] else None,
                }
            )
        return sorted(result, key=lambda r: (r["days_left"] is None, r["days_left"] or 0, r["id"]))

    def request_row(self, request_id: str) -> dict[str, Any] | None:
        """The request as the ledger holds it (subject: its own identifiers), or None."""
        with self.engine.connect() as conn:
            row = self._request(conn, request_id)
        if row is None:
            return None
        result = dict(row)
        result["subject"] = json.loads(row["subject"])
        for name in ("received_at", "closed_at"):
            result[name] = _utc(row[name]) if row[name] else None
        return result

    def waiting_entry(self, request_id: str, status: Status, what: str) -> AuditEntry:
        """The status entry of a request that waits as ``status`` (for approval, for a manual
        answer); anything else is one line naming its status (``what``: what it waits for)."""
        statuses = [e for e in self.entries(request_id) if e.event.startswith("status:")]
        if not statuses:
            raise UnknownRequest(f"no request {request_id} in the ledger")
        last = statuses[-1]
        if last.event != f"status:{status.value}":
            now = last.event.removeprefix("status:")
            raise LedgerError(f"{request_id} is not awaiting {what} (its status is {now})")
        return last

    def opened_by(self, request_id: str) -> str:
        """Who opened the request: the actor of its ``received`` entry."""
        with self.engine.connect() as conn:
            actor = conn.execute(
                sa.select(audit_table.c.actor)
                .where(audit_table.c.request_id == request_id, audit_table.c.event == "received")
                .order_by(audit_table.c.seq)
                .limit(1)
            ).scalar_one_or_none()
        if actor is None:
            raise UnknownRequest(f"no request {request_id} in the ledger")
        return str(actor)

    @staticmethod
    def _request(conn: sa.Connection, request_id: str) -> sa.RowMapping | None:
        return (
            conn.execute(sa.select(requests_table).where(requests_table.c.id == request_id))
            .mappings()
            .first()
        )

    def request(self, request_id: str) -> DataSubjectRequest | None:
        """The request as the ledger received it (its identifiers and received time)."""
        with self.engine.connect() as conn:
            row = self._request(conn, request_id)
        if row is None:
            return None
        subject = json.loads(row["subject"])
        if subject.get("forgotten"):
            raise UnknownRequest(
                f"{request_id} belongs to a subject whose data was erased: the ledger keeps "
                "only keyed hashes of the identifiers; open a new request"
            )
        if row["status"] == Status.RECEIVED.value:
            raise UnknownRequest(
                f"{request_id} came in through intake and is not confirmed yet: confirm it "
                f"(its confirm-request run in Prefect, or `dsr intake confirm {request_id}`)"
            )
        return DataSubjectRequest(
            id=row["id"],
            type=row["type"],
            subject=Subject.from_raw(subject["emails"], subject["phones"]).model_copy(
                update={
                    "others": tuple(
                        Identifier(kind=kind, value=value)
                        for kind, _, value in (o.partition(":") for o in _others(subject))
                    )
                }
            ),
            received_at=row["received_at"],
        )

    def requests_of(self, subject: Subject) -> list[str]:
        """The ids of every request that names any of the subject's identifiers (also those
        whose subject was forgotten: by the keyed hashes)."""
        clear = set(subject.emails) | set(subject.phones) | {str(i) for i in subject.others}
        hashed = {self.identifier_hash(i) for i in clear}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(requests_table.c.id, requests_table.c.subject)).all()
        found = []
        for row in rows:
            stored = json.loads(row.subject)
            mine = hashed if stored.get("forgotten") else clear
            if mine & (set(stored["emails"]) | set(stored["phones"]) | set(_others(stored))):
                found.append(row.id)
        return sorted(found)

    def identifier_hash(self, value: str) -> str:
        """What the ledger keeps of an erased subject's identifier: an HMAC-SHA256 under the
        ledger key (without a key, a plain SHA-256, which a guess can confirm)."""
        if self.key:
            return "hmac:" + hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()

    def forget_subject(self, subject: Subject, request_id: str, actor: str = "dsrflow") -> int:
        """After an erasure: every request of the subject keeps only keyed hashes of the
        identifiers, enough to show which requests were the erased subject's; requests still
        open keep theirs (they are still to be answered). Returns how many requests.

        The subject's restrictions end with the erasure (nothing is left to restrict; records
        kept under a legal hold serve that obligation only, and are erased at its end) and
        keep the same hashes, so the restriction list no longer names the subject either."""
        ids = self.requests_of(subject)
        now = dt.datetime.now(dt.UTC)
        with self._writing() as conn:
            requests = []
            for other in ids:
                row = self._request(conn, other)
                if row is None or (other != request_id and row["status"] not in SETTLED):
                    continue
                stored = json.loads(row["subject"])
                if stored.get("forgotten"):
                    continue
                forgotten = {
                    "emails": sorted(self.identifier_hash(e) for e in stored["emails"]),
                    "phones": sorted(self.identifier_hash(p) for p in stored["phones"]),
                    "forgotten": True,
                }
                if _others(stored):
                    forgotten["others"] = sorted(self.identifier_hash(o) for o in _others(stored))
                requests.append(
                    self._update(conn, requests_table, other, subject=json.dumps(forgotten))
                )
            restrictions = self._forget_restrictions(conn, subject, request_id, now)
            self._append(
                conn,
                request_id,
                actor,
                "subject_forgotten",
                {"requests": len(requests), "restrictions": len(restrictions)},
                requests + restrictions,
            )
        return len([c for c in requests if c])

    def _forget_restrictions(
        self, conn: sa.Connection, subject: Subject, request_id: str, now: dt.datetime
    ) -> list[dict[str, Any] | None]:
        """The subject's restriction rows: ended now if still active, identifiers hashed."""
        rows = conn.execute(
            sa.select(
                restrictions_table.c.id,
                restrictions_table.c.identifier,
                restrictions_table.c.lifted_at,
            ).where(restrictions_table.c.identifier.in_([str(i) for i in subject.identifiers]))
        ).all()
        changes = []
        for row in rows:
            ended = {} if row.lifted_at else {"lifted_at": now, "lifted_by_request": request_id}
            hashed = self.identifier_hash(row.identifier)
            changes.append(
                self._update(conn, restrictions_table, row.id, identifier=hashed, **ended)
            )
        return changes

    # -- restrictions (Art. 18) -------------------------------------------------------------

    def add_restriction(self, subject: Subject, request_id: str, actor: str) -> None:
        now = dt.datetime.now(dt.UTC)
        with self._writing() as conn:
            active = self._active_restrictions(conn)
            new = sorted(str(i) for i in subject.identifiers if str(i) not in active)
            changes = [
                self._insert(
                    conn,
                    restrictions_table,
                    {
                        "identifier": i,
                        "request_id": request_id,
                        "since": now,
                        "lifted_at": None,
                        "lifted_by_request": None,
                    },
                )
                for i in new
            ]
            self._append(conn, request_id, actor, "restricted", {"identifiers": len(new)}, changes)

    def lift_restriction(self, subject: Subject, request_id: str, actor: str) -> int:
        """Lift the subject's restriction: a logged action of its own. Returns how many."""
        now = dt.datetime.now(dt.UTC)
        with self._writing() as conn:
            ids = conn.execute(
                sa.select(restrictions_table.c.id)
                .where(restrictions_table.c.identifier.in_([str(i) for i in subject.identifiers]))
                .where(restrictions_table.c.lifted_at.is_(None))
                .order_by(restrictions_table.c.id)
            ).scalars()
            changes = [
                self._update(
                    conn, restrictions_table, i, lifted_at=now, lifted_by_request=request_id
                )
                for i in ids.all()
            ]
            self._append(
                conn,
                request_id,
                actor,
                "restriction_lifted",
                {"identifiers": len(changes)},
                changes,
            )
        return len(changes)

    def is_restricted(self, subject: Subject) -> bool:
        return self.restricted_since(subject) is not None

    def restricted_since(self, subject: Subject) -> dt.datetime | None:
        """When the subject's processing was first restricted, if it still is."""
        with self.engine.connect() as conn:
            since = conn.execute(
                sa.select(sa.func.min(restrictions_table.c.since)).where(
                    restrictions_table.c.identifier.in_([str(i) for i in subject.identifiers]),
                    restrictions_table.c.lifted_at.is_(None),
                )
            ).scalar_one()
        return _utc(since) if since else None

    def restricted_identifiers(self) -> set[str]:
        with self.engine.connect() as conn:
            return self._active_restrictions(conn)

    def restrictions_by_request(self) -> dict[str, set[str]]:
        """Active restrictions grouped by the request that recorded them (one person each)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(restrictions_table.c.request_id, restrictions_table.c.identifier).where(
                    restrictions_table.c.lifted_at.is_(None)
                )
            )
            groups: dict[str, set[str]] = {}
            for row in rows:
                groups.setdefault(row.request_id, set()).add(row.identifier)
            return groups

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
        with self._writing() as conn:
            known = set(
                conn.execute(
                    sa.select(holds_table.c.record_id).where(
                        holds_table.c.record_id.in_([a.record_id for a in due])
                    )
                ).scalars()
            )
            new = [a for a in due if a.record_id not in known and a.keep_until]
            changes = [
                self._insert(
                    conn,
                    holds_table,
                    {
                        "record_id": a.record_id,
                        "request_id": request_id,
                        "action": a.model_dump_json(),
                        "keep_until": a.keep_until,
                        "released_at": None,
                    },
                )
                for a in new
            ]
            self._append(conn, request_id, actor, "holds_queued", {"records": len(new)}, changes)

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
        """Mark holds done; the subject's identifiers, kept for their erasure, go with it."""
        now = dt.datetime.now(dt.UTC)
        with self._writing() as conn:
            held = conn.execute(
                sa.select(holds_table.c.record_id, holds_table.c.action)
                .where(holds_table.c.record_id.in_(record_ids))
                .order_by(holds_table.c.record_id)
            ).all()
            changes = [
                self._update(
                    conn, holds_table, r.record_id, released_at=now, action=_released(r.action)
                )
                for r in held
            ]
            self._append(conn, None, actor, "holds_released", {"records": len(record_ids)}, changes)

    # -- the one place that writes the tables -----------------------------------------------

    @staticmethod
    def _insert(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
        """Insert one row; returns the row change its chain entry must carry."""
        (key_column,) = table.primary_key.columns
        key = values.get(key_column.name)
        result = conn.execute(table.insert().values(**values))
        if key is None:
            inserted = result.inserted_primary_key
            assert inserted is not None  # a single-row insert
            key = inserted[0]
        rest = {c: v for c, v in values.items() if c != key_column.name}
        return row_change(table.name, "insert", key, rest)

    @staticmethod
    def _update(
        conn: sa.Connection, table: sa.Table, key: Any, **values: Any
    ) -> dict[str, Any] | None:
        """Update one row by its key; returns the row change its chain entry must carry
        (None: no such row, nothing changed)."""
        (key_column,) = table.primary_key.columns
        if not conn.execute(table.update().where(key_column == key).values(**values)).rowcount:
            return None
        return row_change(table.name, "update", key, values)

    # -- the audit chain --------------------------------------------------------------------

    def _append(
        self,
        conn: sa.Connection,
        request_id: str | None,
        actor: str,
        event: str,
        details: dict[str, Any],
        changes: Sequence[dict[str, Any] | None] = (),
    ) -> None:
        changes = [c for c in changes if c]
        if request_id is not None:
            self._changed.add(request_id)
        last = conn.execute(
            sa.select(audit_table.c.seq, audit_table.c.hash)
            .order_by(audit_table.c.seq.desc())
            .limit(1)
        ).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        at = dt.datetime.now(dt.UTC).isoformat()
        text = _canonical(details)
        changes_text = _canonical(changes) if changes else None
        hash_ = entry_hash(seq, request_id, at, actor, event, text, prev, changes_text)
        conn.execute(
            audit_table.insert().values(
                seq=seq,
                request_id=request_id,
                at=at,
                actor=actor,
                event=event,
                details=text,
                prev_hash=prev,
                hash=hash_,
                changes=changes_text,
                mac=entry_mac(self.key, hash_) if self.key else None,
            )
        )

    def _upgrade(self, conn: sa.Connection) -> None:
        """A ledger written before row changes were chained: add the new columns, then adopt
        its tables as they are, in one entry, so that the chain proves them from here on."""
        have = {c["name"] for c in sa.inspect(conn).get_columns("audit")}
        if "changes" in have:
            return
        for table, column in (
            (audit_table, audit_table.c.changes),
            (audit_table, audit_table.c.mac),
            (requests_table, requests_table.c.closed_reason),
        ):
            kind = column.type.compile(conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
        changes = []
        for table in STATE_TABLES.values():
            (key_column,) = table.primary_key.columns
            for row in conn.execute(sa.select(table).order_by(key_column)).mappings():
                rest = {c: v for c, v in row.items() if c != key_column.name}
                changes.append(row_change(table.name, "insert", row[key_column.name], rest))
        self._append(conn, None, "dsrflow", "state_adopted", {"rows": len(changes)}, changes)

    def entries(self, request_id: str | None = None) -> Iterator[AuditEntry]:
        query = sa.select(audit_table).order_by(audit_table.c.seq)
        if request_id:
            query = query.where(audit_table.c.request_id == request_id)
        # Read them all first: a caller that writes while iterating must not wait on this read.
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        for row in rows:
            yield AuditEntry(
                **{
                    **row,
                    "details": json.loads(row["details"]),
                    "changes": json.loads(row["changes"]) if row["changes"] else [],
                }
            )

    def head(self) -> tuple[int, str]:
        """The last entry's (seq, hash); (0, GENESIS) for an empty chain."""
        with self.engine.connect() as conn:
            last = conn.execute(
                sa.select(audit_table.c.seq, audit_table.c.hash)
                .order_by(audit_table.c.seq.desc())
                .limit(1)
            ).first()
        return (last.seq, last.hash) if last else (0, GENESIS)

    def anchor(self) -> str:
        """The chain head as ``SEQ:HASH``: keep it elsewhere (a receipt), and ``dsr ledger
        verify --head SEQ:HASH`` shows any rewrite of the chain up to it."""
        seq, hash_ = self.head()
        return f"{seq}:{hash_}"

    def verify(self, head: tuple[int, str] | None = None) -> list[Problem]:
        """Every break in the chain (the first one is where tampering starts), then every
        difference between the tables and the state the chain records. ``head``: a
        (seq, hash) kept elsewhere that the chain must still contain."""
        # Under the write lock: the chain and the tables are read as of one moment.
        with self._writing() as conn:
            rows = conn.execute(sa.select(audit_table).order_by(audit_table.c.seq)).all()
            tables = {
                name: table_state(name, conn.execute(sa.select(table)).mappings())
                for name, table in STATE_TABLES.items()
            }
        problems: list[Problem] = [*self._chain_problems(rows)]
        if head is not None:
            problems += _anchor_problems(rows, head)
        chain, odd = replay((r.seq, json.loads(r.changes)) for r in rows if r.changes)
        problems += [ChainProblem(seq, problem) for seq, problem in odd]
        problems += compare(chain, tables)
        return problems

    def _chain_problems(self, rows: Sequence[Any]) -> Iterator[ChainProblem]:
        prev = GENESIS
        expected_seq = 1
        for row in rows:
            if row.seq != expected_seq:
                yield ChainProblem(row.seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                yield ChainProblem(row.seq, "does not follow the entry before it")
            recomputed = entry_hash(
                row.seq,
                row.request_id,
                row.at,
                row.actor,
                row.event,
                row.details,
                row.prev_hash,
                row.changes,
            )
            if recomputed != row.hash:
                yield ChainProblem(row.seq, "was changed after it was written")
            if self.key and row.mac is None:
                yield ChainProblem(row.seq, "carries no keyed hash: written without the ledger key")
            elif self.key and not hmac.compare_digest(row.mac, entry_mac(self.key, row.hash)):
                yield ChainProblem(
                    row.seq, "its keyed hash is wrong: not written with the ledger key"
                )
            prev = row.hash
            expected_seq = row.seq + 1


def _anchor_problems(rows: Sequence[Any], head: tuple[int, str]) -> list[ChainProblem]:
    seq, hash_ = head
    if seq == 0:
        return []
    found = next((r for r in rows if r.seq == seq), None)
    if found is None:
        last = rows[-1].seq if rows else 0
        return [ChainProblem(seq, f"is missing: the chain ends at entry {last} (truncated)")]
    if found.hash != hash_:
        return [ChainProblem(seq, "differs from the head kept elsewhere: the chain was rewritten")]
    return []


def _awaiting_confirmation(row: sa.RowMapping | None, request_id: str) -> sa.RowMapping:
    """The row of a request the intake opened and the officer has not confirmed yet."""
    if row is None:
        raise UnknownRequest(f"no request {request_id} in the ledger")
    if row["status"] != Status.RECEIVED.value:
        raise LedgerError(
            f"{request_id} is {row['status']}, not awaiting confirmation (confirmed "
            "before, or not opened by the intake)"
        )
    return row


def _check_same_request(row: sa.RowMapping, request: DataSubjectRequest) -> None:
    """One id names one request of one subject (no identifiers in the message: it is logged)."""
    if row["type"] != request.type.value:
        raise LedgerError(
            f"request {request.id} is already in the ledger with type {row['type']}, not "
            f"{request.type.value}: use a new request id"
        )
    stored = json.loads(row["subject"])
    if stored.get("forgotten"):
        raise LedgerError(
            f"request {request.id} belongs to a subject whose data was erased: use a new request id"
        )
    if (
        set(stored["emails"]) != set(request.subject.emails)
        or set(stored["phones"]) != set(request.subject.phones)
        or set(_others(stored)) != {str(i) for i in request.subject.others}
    ):
        raise LedgerError(
            f"request {request.id} is already in the ledger for another subject: "
            "use a new request id"
        )


def _private_sqlite_file(database: str | None) -> None:
    """The ledger holds subjects' identifiers: its folder (when created here) is 0700 and the
    file 0600."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _begin_sqlite_writes_immediately(engine: sa.Engine) -> None:
    """SQLite: a write transaction takes the write lock at BEGIN (IMMEDIATE), so two appends
    never read the same last seq; others wait up to the busy timeout. SQLAlchemy, not the
    sqlite3 module, says when a transaction begins (the documented pysqlite recipe)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        # An erased subject's identifiers are overwritten on disk, not left in free pages.
        dbapi_connection.execute("PRAGMA secure_delete = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

"""Art. 12(6): how the requester was confirmed to be the subject, kept in the ledger.

Three ways, each an ``identity_verified`` entry naming its ``method``:

* ``service_desk``: the request came from a logged-in service-desk account whose address, as
  Jira shows it, is one of the subject's (connectors/jira/servicedesk.py reads it). A hidden
  address proves nothing and is refused, not assumed;
* ``one_time_code``: a code mailed to the subject's address and typed back by the officer. The
  ledger keeps an HMAC-SHA256 of it under the ledger key (with a random salt per code), never
  the code; entries are compared in constant time; a code expires and allows a few attempts,
  each wrong one recorded;
* ``officer_check``: the officer's own check, with a note saying what was checked.

``require_verified`` is the gate before a delivery and before the execution of a change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from dsrflow.errors import DsrflowError
from dsrflow.handover_settings import IdentityPolicy
from dsrflow.identifiers import email_key
from dsrflow.ledger import NEEDS_REASON, AuditEntry, Ledger, UnknownRequest

CODE_DIGITS = 8
VERIFIED = "identity_verified"
CODE_SENT = "identity_code_sent"
CODE_WRONG = "identity_code_wrong"
CODE_VOID = "identity_code_void"
NOT_REQUIRED = "identity_not_required"


class IdentityError(DsrflowError, ValueError):
    """The identity cannot be verified this way, or is not verified; the message says why."""


class IdentityNotVerified(IdentityError):
    """The gate: nothing is delivered or executed for an unverified requester."""


class Method(StrEnum):
    SERVICE_DESK = "service_desk"
    ONE_TIME_CODE = "one_time_code"
    OFFICER_CHECK = "officer_check"


@dataclass(frozen=True)
class IssuedCode:
    """A code to send: ``code`` goes to the subject only, never to a log or the ledger."""

    code: str
    to: str
    expires_at: dt.datetime


def verification(ledger: Ledger, request_id: str) -> AuditEntry | None:
    """The request's identity verification, if one is recorded (the latest)."""
    found = [e for e in ledger.entries(request_id) if e.event == VERIFIED]
    return found[-1] if found else None


def require_verified(ledger: Ledger, request_id: str, policy: IdentityPolicy, what: str) -> None:
    """Raise unless the request's identity is verified. Where the config does not require it
    (the sandbox), the ledger records that the step went ahead without it."""
    if verification(ledger, request_id) is not None:
        return
    if not policy.required:
        ledger.record(request_id, NOT_REQUIRED, before=what)
        return
    raise IdentityNotVerified(
        f"{request_id}: the requester's identity is not verified, so no {what} (Art. 12(6)); "
        f"verify it first: `dsr identity send-code {request_id}` then `dsr identity enter-code`, "
        f"`dsr identity service-desk {request_id} --ticket KEY`, or `dsr identity check "
        f"{request_id} --officer NAME --note WHAT`"
    )


def _open_request_emails(ledger: Ledger, request_id: str) -> list[str]:
    row = ledger.request_row(request_id)
    if row is None:
        raise UnknownRequest(f"no request {request_id} in the ledger")
    # An answered access request is completed and still to be delivered: only a rejected or
    # withdrawn one has nothing left to verify for.
    if row["status"] in NEEDS_REASON:
        raise IdentityError(f"{request_id} is {row['status']}; nothing to verify")
    request = ledger.request(request_id)
    assert request is not None
    return list(request.subject.emails)


def record_officer_check(ledger: Ledger, request_id: str, officer: str, note: str) -> None:
    """The officer's own check (an ID document seen, a known phone number called back)."""
    _open_request_emails(ledger, request_id)
    if not officer.strip() or not note.strip():
        raise IdentityError("an officer's identity check needs the officer's name and a note")
    ledger.record(
        request_id, VERIFIED, actor=officer.strip(), method=Method.OFFICER_CHECK, note=note.strip()
    )


def record_service_desk(
    ledger: Ledger,
    request_id: str,
    ticket: str,
    reporter_email: str | None,
    actor: str,
) -> None:
    """Verified when the ticket's reporter shows an address that is one of the subject's;
    ``reporter_email`` is None where Jira hides it (the account's privacy settings)."""
    emails = _open_request_emails(ledger, request_id)
    if reporter_email is None:
        ledger.record(request_id, "identity_refused", actor=actor, ticket=ticket, why="hidden")
        raise IdentityError(
            f"{ticket}: Jira does not show the reporter's address (their profile's privacy "
            "settings), so the account cannot be matched to the subject; use a one-time code"
        )
    if email_key(reporter_email) not in {email_key(e) for e in emails}:
        ledger.record(request_id, "identity_refused", actor=actor, ticket=ticket, why="other")
        raise IdentityError(
            f"{ticket}: the reporter's account address is not one of {request_id}'s subject's"
        )
    ledger.record(request_id, VERIFIED, actor=actor, method=Method.SERVICE_DESK, ticket=ticket)


def _code_mac(key: bytes, request_id: str, salt: str, code: str) -> str:
    message = f"{request_id}\x00{salt}\x00{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _key(ledger: Ledger) -> bytes:
    if not ledger.key:
        raise IdentityError(
            "a one-time code is kept as an HMAC under the ledger key: set ledger_key in the "
            "config (or DSRFLOW_LEDGER_KEY)"
        )
    return ledger.key


def issue_code(
    ledger: Ledger,
    request_id: str,
    policy: IdentityPolicy,
    actor: str,
    to: str | None = None,
    now: dt.datetime | None = None,
) -> IssuedCode:
    """A new code for the request (an earlier one becomes void), to one of the subject's own
    addresses; the ledger gets its keyed hash, the expiry and a hash of the address."""
    key = _key(ledger)
    emails = _open_request_emails(ledger, request_id)
    if to is None:
        if not emails:
            raise IdentityError(f"{request_id} names no address to send a code to")
        to = emails[0]
    elif email_key(to) not in {email_key(e) for e in emails}:
        raise IdentityError(f"{to} is not one of {request_id}'s subject's addresses")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    expires = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(hours=policy.code_ttl_hours)
    ledger.record(
        request_id,
        CODE_SENT,
        actor=actor,
        code_hmac=_code_mac(key, request_id, salt, code),
        salt=salt,
        expires_at=expires.isoformat(),
        to=ledger.identifier_hash(to),
    )
    return IssuedCode(code=code, to=to, expires_at=expires)


@dataclass(frozen=True)
class CodeCheck:
    verified: bool
    attempts_left: int
    reason: str = ""


def check_code(
    ledger: Ledger,
    request_id: str,
    entered: str,
    policy: IdentityPolicy,
    officer: str,
    now: dt.datetime | None = None,
) -> CodeCheck:
    """Compare the code the officer typed with the latest one sent. A wrong one is recorded
    and counted; the last allowed wrong one voids the code. An expired or void code, or none,
    raises (send a new one)."""
    key = _key(ledger)
    entries = list(ledger.entries(request_id))
    sent = [i for i, e in enumerate(entries) if e.event == CODE_SENT]
    if not sent:
        raise IdentityError(f"no one-time code was sent for {request_id}")
    issued = entries[sent[-1]]
    after = entries[sent[-1] + 1 :]
    if any(e.event in (CODE_VOID, VERIFIED) for e in after):
        raise IdentityError(f"{request_id}'s code is used or void; send a new one")
    now = now or dt.datetime.now(dt.UTC)
    if now >= dt.datetime.fromisoformat(issued.details["expires_at"]):
        ledger.record(request_id, CODE_VOID, actor=officer, why="expired")
        raise IdentityError(f"{request_id}'s code expired; send a new one")
    wrong = sum(e.event == CODE_WRONG for e in after)
    given = _code_mac(key, request_id, issued.details["salt"], "".join(entered.split()))
    if hmac.compare_digest(given, issued.details["code_hmac"]):
        ledger.record(request_id, VERIFIED, actor=officer, method=Method.ONE_TIME_CODE)
        return CodeCheck(verified=True, attempts_left=policy.max_attempts - wrong)
    wrong += 1
    ledger.record(request_id, CODE_WRONG, actor=officer, attempt=wrong)
    left = policy.max_attempts - wrong
    if left <= 0:
        ledger.record(request_id, CODE_VOID, actor=officer, why="attempts")
        return CodeCheck(False, 0, "wrong code; no attempts left, the code is void")
    return CodeCheck(False, left, f"wrong code; {left} attempt(s) left")

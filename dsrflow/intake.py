"""Intake: requests that arrive at the service desk or in a mailbox, opened in the ledger.

Each new ticket or mail becomes a request in the ``received`` state, with the ticket's or
mail's own time (the statutory month counts from receipt, not from when dsrflow noticed), the
channel and its reference, the requester's address, and the right the text asks for when simple
keyword rules (bokmål and English) find exactly one; otherwise ``unclear``. Nothing is started
before the officer confirms the type and the subject's identifiers. The texts are read here,
in memory, and never stored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from dsrflow.identifiers import Identifier, IdentifierError, normalise_email
from dsrflow.ledger import Ledger, LedgerError
from dsrflow.request import JIRA_ACCOUNT, RequestType, Subject, new_request_id

UNCLEAR = "unclear"


class Channel(StrEnum):
    SERVICEDESK = "servicedesk"
    MAIL = "mail"


@dataclass(frozen=True)
class Incoming:
    """One ticket or mail as a channel read it. ``text`` (summary and description, or subject
    and preview) only decides the right asked for; it is not kept."""

    channel: Channel
    reference: str  # the issue key; the mail's conversation id (one thread, one request)
    received_at: dt.datetime
    requester_email: str | None
    text: str
    requester_account: str | None = None  # the reporter's Jira accountId


# Stems, matched at the start of a word, case-insensitive. Bokmål and English.
_RIGHTS: dict[RequestType, tuple[str, ...]] = {
    RequestType.ACCESS: (
        "innsyn",
        "kopi av",
        "en kopi",
        "hvilke opplysninger",
        "dataportabilitet",
        "access",
        "copy of",
        "a copy",
        "what data",
        "what personal data",
        "portability",
        "artikkel 15",
        "article 15",
        "art. 15",
    ),
    RequestType.ERASURE: (
        "slett",
        "glemt",
        "fjern mine",
        "erase",
        "erasure",
        "delete",
        "deletion",
        "forgotten",
        "remove my",
        "artikkel 17",
        "article 17",
        "art. 17",
    ),
    RequestType.RECTIFICATION: (
        "rett opp",
        "retting",
        "korriger",
        "feil i",
        "rectif",
        "correct",
        "artikkel 16",
        "article 16",
        "art. 16",
    ),
    RequestType.RESTRICTION: (
        "begrens",
        "restrict",
        "artikkel 18",
        "article 18",
        "art. 18",
    ),
    RequestType.CONSENT_WITHDRAWAL: (
        "trekke tilbake",
        "trekker tilbake",
        "trekke samtykke",
        "samtykke",
        "withdraw",
        "consent",
    ),
}
_PATTERNS = {
    right: re.compile(r"\b(?:" + "|".join(re.escape(s) for s in stems) + ")", re.IGNORECASE)
    for right, stems in _RIGHTS.items()
}


def asked_for(text: str) -> str:
    """The right the text asks for, when exactly one right's words occur in it; else
    ``unclear`` (none, or several: "delete my data and send me a copy" is for the officer)."""
    found = [right for right, pattern in _PATTERNS.items() if pattern.search(text)]
    return found[0].value if len(found) == 1 else UNCLEAR


def requester_of(item: Incoming, is_own: Callable[[str], bool] = lambda _: False) -> Subject:
    """The requester's identifiers as the ledger keeps them: the address, normalised. None
    when it is not an address, or when it is the controller's own (``is_own``: a request an
    agent filed or a colleague forwarded is not theirs): the officer gives the subject's when
    confirming. The request itself is never dropped."""
    emails: tuple[str, ...] = ()
    if item.requester_email:
        try:
            emails = (normalise_email(item.requester_email),)
        except IdentifierError:
            emails = ()
    if emails and is_own(emails[0]):
        return Subject(emails=())
    others = (
        (Identifier(kind=JIRA_ACCOUNT, value=item.requester_account),)
        if item.requester_account
        else ()
    )
    return Subject(emails=emails, others=others)


@dataclass
class Opened:
    """What one intake run did: the requests opened (id, channel, right asked for) and how
    many it had seen before."""

    opened: list[tuple[str, Channel, str]] = field(default_factory=list)
    known: int = 0

    def counts(self) -> dict[str, int]:
        per = {c.value: sum(1 for _, ch, _ in self.opened if ch is c) for c in Channel}
        return {**per, "known": self.known}


ID_ATTEMPTS = 5


def open_incoming(
    ledger: Ledger,
    items: Iterable[Incoming],
    actor: str = "intake",
    is_own: Callable[[str], bool] = lambda _: False,
) -> Opened:
    """Open every item the ledger has not seen (by channel and reference), oldest first;
    ``is_own``: whether an address is the controller's (``Controller.is_own_address``)."""
    result = Opened()
    for item in sorted(items, key=lambda i: i.received_at):
        for attempt in range(ID_ATTEMPTS):
            request_id = new_request_id()
            try:
                fresh = ledger.receive(
                    request_id,
                    item.channel.value,
                    item.reference,
                    requester_of(item, is_own),
                    item.received_at,
                    asked_for(item.text),
                    actor=actor,
                )
            except LedgerError:
                if attempt == ID_ATTEMPTS - 1:
                    raise
                continue  # the drawn id was taken: draw again
            if fresh:
                result.opened.append((request_id, item.channel, asked_for(item.text)))
            else:
                result.known += 1
            break
    return result


# The deployment (``flow name/deployment name``) that answers each confirmed type, and
# whether it can start with the request id alone: a rectification needs the corrections and a
# consent withdrawal the purpose, which the officer gives in that deployment's run form.
DEPLOYMENTS: dict[RequestType, tuple[str, bool]] = {
    RequestType.ACCESS: ("access-request/access-request", True),
    RequestType.ERASURE: ("erasure-request/erasure-request", True),
    RequestType.RESTRICTION: ("restriction-request/restriction-request", True),
    RequestType.RECTIFICATION: ("rectification-request/rectification-request", False),
    RequestType.CONSENT_WITHDRAWAL: ("consent-withdrawal/consent-withdrawal", False),
}


def confirm(
    ledger: Ledger,
    request_id: str,
    request_type: RequestType,
    officer: str,
    *,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    use_requester: bool = True,
    note: str = "",
    phone_region: str = "NO",
) -> Subject:
    """The officer's confirmation: the type, and the subject's identifiers (the requester's,
    unless ``use_requester`` is off, plus those given). IdentifierError names a bad one or
    says that no address is left; LedgerError a request not awaiting confirmation."""
    if not officer.strip():
        raise IdentifierError("the officer who confirms must give a name")
    _, requester = ledger.received_subject(request_id)
    all_emails = [*(requester.emails if use_requester else ()), *emails]
    accounts = (
        [i.value for i in requester.others if i.kind == JIRA_ACCOUNT] if use_requester else []
    )
    subject = Subject.from_raw(all_emails, [*phones], None, phone_region, jira_accounts=accounts)
    ledger.confirm_received(request_id, request_type.value, subject, officer.strip(), note)
    return subject

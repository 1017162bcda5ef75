"""Handing an access export to the subject, and only to the subject.

The export folder goes as one ZIP encrypted with AES-256 (WinZip AE-2, through pyzipper) under a
random password that travels separately: shown to the officer (or mailed, when the archive went
to the service desk). Only the files the manifest names, and the manifest, go in; the folder must
match its manifest first. The archive is built in a private temporary folder and removed once
sent; the ledger's ``delivered`` entry keeps its SHA-256, the channel and the folder, and the
retention sweep removes the folder ``delivery.retention_days`` after it
(``delivered_exports``).

Two channels:

* ``jira``: a public attachment on the subject's own service-desk request, and only if nobody
  else takes part in it: the reporter's address (as Jira shows it) must be the subject's, and the
  request must have no participant but the reporter. A hidden address is a refusal too.
* ``mail``: Graph ``sendMail`` from the officer's mailbox (``identity.sender``) to the subject's
  address, the archive as a file attachment (3 MB at most: connectors/mail/send.py).

Before either, the request's identity must be verified (dsrflow/identity.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pyzipper

from connectors.jira.client import JiraClient
from connectors.jira.servicedesk import RequestPeople, attach_public, request_people
from connectors.jira.settings import JiraSource
from connectors.mail.send import Attachment, send_mail
from connectors.mail.settings import MailSource
from dsrflow.config import Config
from dsrflow.copies import export_folders
from dsrflow.errors import DsrflowError
from dsrflow.export import verify_manifest
from dsrflow.identifiers import email_key
from dsrflow.identity import require_verified
from dsrflow.ledger import Ledger, UnknownRequest

DELIVERED = "delivered"
PASSWORD_BYTES = 24  # 192 bits, as 32 URL-safe characters


class DeliveryError(DsrflowError, ValueError):
    """The export cannot go this way (or at all yet); the message says why."""


class Channel(StrEnum):
    JIRA = "jira"
    MAIL = "mail"


@dataclass(frozen=True)
class Archive:
    path: Path
    password: str
    sha256: str
    files: list[str]


@dataclass(frozen=True)
class Delivered:
    """What the officer needs: where it went, and the password to send separately (never
    logged, never in the ledger)."""

    request_id: str
    channel: Channel
    where: str
    sha256: str
    password: str
    password_sent: bool


def export_folder(ledger: Ledger, config: Config, request_id: str) -> Path:
    """The request's export folder as the ledger recorded it, intact against its manifest."""
    folders = [f for f in export_folders(ledger, request_id, config.output_dir) if f.exists()]
    if not folders:
        raise DeliveryError(f"{request_id} has no export folder to deliver (run the access first)")
    folder = folders[-1]
    if not (folder / "manifest.json").exists():
        raise DeliveryError(f"{folder} has no manifest.json; it is not an export")
    changed = verify_manifest(folder)
    if changed:
        raise DeliveryError(f"{folder}: {', '.join(changed)} no longer match the manifest")
    return folder


def pack(folder: Path, target: Path) -> Archive:
    """``folder``'s manifest and the files it names, into ``target`` (AES-256, a new random
    password)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    names = [entry["name"] for entry in manifest["files"]] + ["manifest.json"]
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    with pyzipper.AESZipFile(
        target, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode("ascii"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for name in names:
            archive.write(folder / name, arcname=f"{folder.name}/{name}")
    target.chmod(0o600)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return Archive(path=target, password=password, sha256=digest, files=names)


@contextmanager
def packed(folder: Path, request_id: str) -> Iterator[Archive]:
    """The archive in a private temporary folder, removed afterwards. Its name carries the
    time, so that it is unique on the ticket it goes to."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="dsrflow-delivery-") as temporary:
        yield pack(folder, Path(temporary) / f"{request_id}-{stamp}.zip")


def _subject_emails(ledger: Ledger, request_id: str) -> set[str | None]:
    request = ledger.request(request_id)
    if request is None:
        raise UnknownRequest(f"no request {request_id} in the ledger")
    return {email_key(e) for e in request.subject.emails}


def deliver_via_jira(
    config: Config,
    ledger: Ledger,
    request_id: str,
    ticket: str,
    officer: str,
    password_by_mail: bool = False,
) -> Delivered:
    """Attach the archive to ``ticket`` after checking that only the subject takes part;
    ``password_by_mail``: the password goes to the subject's address by mail (the other
    channel), else only to the officer."""
    require_verified(ledger, request_id, config.identity, "delivery")
    folder = export_folder(ledger, config, request_id)
    name = config.delivery.jira_source
    source = config.sources.get(name) if name else None
    if not isinstance(source, JiraSource):
        raise DeliveryError("delivery.jira_source in the config must name a `kind: jira` source")
    client = JiraClient(name or "jira", source)
    try:
        people = request_people(client, ticket)
        _only_the_subject(ledger, request_id, people)
        with packed(folder, request_id) as archive:
            attach_public(
                client,
                people.key,
                people.project,
                archive.path.name,
                archive.path.read_bytes(),
                "Here is the copy of your personal data you asked for (Art. 15 GDPR), as an "
                "encrypted ZIP archive. The password comes separately.",
            )
    finally:
        client.close()
    ledger.record(
        request_id,
        DELIVERED,
        actor=officer,
        via=Channel.JIRA,
        ticket=people.key,
        archive_sha256=archive.sha256,
        files=len(archive.files),
        export_dir=str(folder),
    )
    if password_by_mail:
        send_password(config, ledger, request_id, officer, archive.password)
    return Delivered(
        request_id, Channel.JIRA, people.key, archive.sha256, archive.password, password_by_mail
    )


def send_password(
    config: Config, ledger: Ledger, request_id: str, officer: str, password: str
) -> None:
    """The archive's password to the subject's first address, by mail."""
    name, source, sender = mail_sender(config)
    request = ledger.request(request_id)
    assert request is not None
    send_mail(
        name,
        source,
        sender,
        request.subject.emails[0],
        f"The password of your data archive ({request_id})",
        f"The password of the archive we sent you for request {request_id}: {password}",
    )
    ledger.record(request_id, "password_sent", actor=officer, via=Channel.MAIL)


def _only_the_subject(ledger: Ledger, request_id: str, people: RequestPeople) -> None:
    subject = _subject_emails(ledger, request_id)
    reporter = people.reporter
    if reporter is None or reporter.email is None:
        raise DeliveryError(
            f"{people.key}: Jira does not show the reporter's address, so it cannot be confirmed "
            "as the subject's; deliver by mail instead"
        )
    if email_key(reporter.email) not in subject:
        raise DeliveryError(f"{people.key} was not raised by {request_id}'s subject; not sent")
    others = [p for p in people.participants if p.account_id != reporter.account_id]
    if others:
        raise DeliveryError(
            f"{people.key} has {len(others)} other participant(s), who would see the "
            "attachment; remove them from the request or deliver by mail"
        )


def deliver_via_mail(
    config: Config, ledger: Ledger, request_id: str, officer: str, to: str | None = None
) -> Delivered:
    """Mail the archive from the officer's mailbox to the subject's address; the password is
    for the officer to give by another channel."""
    require_verified(ledger, request_id, config.identity, "delivery")
    folder = export_folder(ledger, config, request_id)
    name, source, sender = mail_sender(config)
    subject = _subject_emails(ledger, request_id)
    request = ledger.request(request_id)
    assert request is not None
    address = to or request.subject.emails[0]
    if email_key(address) not in subject:
        raise DeliveryError(f"{address} is not one of {request_id}'s subject's addresses")
    with packed(folder, request_id) as archive:
        send_mail(
            name,
            source,
            sender,
            address,
            f"Your personal data ({request_id})",
            "Here is the copy of your personal data you asked for (Art. 15 GDPR), as an "
            "encrypted ZIP archive. The password comes separately.",
            [Attachment(archive.path.name, archive.path.read_bytes(), "application/zip")],
        )
    ledger.record(
        request_id,
        DELIVERED,
        actor=officer,
        via=Channel.MAIL,
        to=ledger.identifier_hash(address),
        archive_sha256=archive.sha256,
        files=len(archive.files),
        export_dir=str(folder),
    )
    return Delivered(request_id, Channel.MAIL, "mail", archive.sha256, archive.password, False)


def mail_sender(config: Config) -> tuple[str, MailSource, str]:
    """The mail source that sends (``identity.mail_source``), its settings and the officer's
    mailbox."""
    name, sender = config.identity.mail_source, config.identity.sender
    source = config.sources.get(name) if name else None
    if not isinstance(source, MailSource) or not sender:
        raise DeliveryError(
            "sending mail needs identity.mail_source (a `kind: mail` source) and "
            "identity.sender (the officer's mailbox) in the config"
        )
    return name or "mail", source, sender


def delivered_exports(ledger: Ledger, retention: dt.timedelta, now: dt.datetime) -> list[Path]:
    """Export folders delivered longer ago than ``retention`` that still exist and were not
    written again after that delivery."""
    delivered: dict[Path, dt.datetime] = {}
    written: dict[Path, dt.datetime] = {}
    for entry in ledger.entries():
        folder = entry.details.get("export_dir") if entry.event in (DELIVERED, "exported") else None
        if not folder:
            continue
        at = dt.datetime.fromisoformat(entry.at)
        seen = delivered if entry.event == DELIVERED else written
        seen[Path(folder)] = max(at, seen.get(Path(folder), at))
    return sorted(
        folder
        for folder, at in delivered.items()
        if now - at >= retention and at >= written.get(folder, at) and folder.exists()
    )

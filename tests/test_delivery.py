"""Delivery of an export (issue 16, Delivery): refused without a verified identity; an AES-256
ZIP whose files are the manifest's, decrypted with the password that is given separately; on
the subject's own service-desk request only when nobody else takes part, or by Graph sendMail;
logged with the archive's SHA-256; the folder goes with the sweep after the retention. The gate
holds for the execution of an erasure too."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from dsrflow.config import load_config
from dsrflow.delivery import delivered_exports, pack
from tests.support.handover import (
    SUBJECT,
    Channels,
    exported,
    matches_manifest,
    password_in,
    unpacked,
)
from tests.test_sql_erasure import snapshot

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
REQUEST = "DSR-2026-1611"


def delivered_entry(channels: Channels, request_id: str) -> dict[str, object]:
    with channels.ledger() as ledger:
        (entry,) = [e for e in ledger.entries(request_id) if e.event == "delivered"]
    return entry.details


def test_delivery_is_refused_without_a_verified_identity(channels, tmp_path):
    exported(channels, REQUEST, tmp_path)
    for via in ("mail", "jira"):
        refused = channels.cli("deliver", REQUEST, "--via", via, "--ticket", "SUP-1")
        assert refused.exit_code == 2
        assert "identity is not verified" in refused.output
    assert channels.sent() == []
    assert channels.jira_emulator.attachments.files == {}
    assert "delivered" not in channels.events(REQUEST)


def test_mail_delivery_decrypts_with_the_password_and_matches_the_manifest(channels, tmp_path):
    folder = exported(channels, REQUEST, tmp_path)
    checked = channels.cli("identity", "check", REQUEST, "--officer", "Ingrid", "--note", "ID")
    assert checked.exit_code == 0, checked.output
    done = channels.cli("deliver", REQUEST, "--via", "mail", "--officer", "Ingrid")
    assert done.exit_code == 0, done.output
    password = password_in(done.output)
    (message,) = channels.sent()
    assert message["toRecipients"] == [{"emailAddress": {"address": SUBJECT}}]
    assert password not in json.dumps(message["body"])  # the password travels separately
    (attachment,) = message["attachments"]
    archive = base64.b64decode(attachment["contentBytes"])
    matches_manifest(unpacked(archive, password), folder)
    with pytest.raises(RuntimeError):
        unpacked(archive, "not-the-password")
    details = delivered_entry(channels, REQUEST)
    assert details["archive_sha256"] == hashlib.sha256(archive).hexdigest()
    assert details["via"] == "mail"
    assert details["export_dir"] == str(folder)
    ledger_file = Path(load_config(channels.config).ledger_url.removeprefix("sqlite:///"))
    assert password.encode() not in ledger_file.read_bytes()


def test_jira_delivery_attaches_to_the_subjects_own_request(channels, tmp_path):
    folder = exported(channels, REQUEST, tmp_path)
    verified = channels.cli("identity", "service-desk", REQUEST, "--ticket", "SUP-1")
    assert verified.exit_code == 0, verified.output
    done = channels.cli("deliver", REQUEST, "--via", "jira", "--officer", "Ingrid")
    assert done.exit_code == 0, done.output  # the ticket is the one that verified her
    issue = channels.jira.issue("SUP-1")
    assert issue is not None
    (attached,) = issue.fields["attachment"]
    archive = channels.jira_emulator.attachments.files[attached["id"]]
    matches_manifest(unpacked(archive, password_in(done.output)), folder)
    assert issue.comments[-1].public  # public: the customer sees it in the portal
    details = delivered_entry(channels, REQUEST)
    assert details["ticket"] == "SUP-1"
    assert details["archive_sha256"] == hashlib.sha256(archive).hexdigest()


@pytest.mark.parametrize(
    ("ticket", "why"),
    [
        ("SUP-2", "1 other participant(s)"),
        ("SUP-3", "does not show the reporter's address"),
        ("SUP-4", "was not raised by"),  # a look-alike's request
    ],
)
def test_jira_delivery_is_refused_where_anyone_else_could_see_it(channels, tmp_path, ticket, why):
    exported(channels, REQUEST, tmp_path)
    assert channels.cli("identity", "check", REQUEST, "--note", "called back").exit_code == 0
    refused = channels.cli("deliver", REQUEST, "--via", "jira", "--ticket", ticket)
    assert refused.exit_code == 2
    assert why in refused.output
    assert channels.jira_emulator.attachments.files == {}
    assert channels.jira_emulator.attachments.temporary == {}  # refused before any upload
    assert "delivered" not in channels.events(REQUEST)


def test_mail_delivery_refuses_an_archive_over_graphs_inline_limit(channels, tmp_path):
    folder = exported(channels, REQUEST, tmp_path)
    big = folder / "export.html"
    # Random bytes: they do not compress, so the archive is over 3 MB too.
    big.write_bytes(big.read_bytes() + b"<!--" + os.urandom(3_200_000) + b"-->")
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        entry["sha256"] = hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert channels.cli("identity", "check", REQUEST, "--note", "ID").exit_code == 0
    refused = channels.cli("deliver", REQUEST, "--via", "mail")
    assert refused.exit_code == 2
    assert "3 MB" in refused.output
    assert channels.sent() == []


def test_a_changed_export_is_not_delivered(channels, tmp_path):
    folder = exported(channels, REQUEST, tmp_path)
    (folder / "export.json").write_text("{}")
    assert channels.cli("identity", "check", REQUEST, "--note", "ID").exit_code == 0
    refused = channels.cli("deliver", REQUEST, "--via", "mail")
    assert refused.exit_code == 2
    assert "export.json" in refused.output
    assert channels.sent() == []


def test_the_sweep_removes_a_delivered_folder_after_the_retention(channels, tmp_path):
    folder = exported(channels, REQUEST, tmp_path)
    assert channels.cli("identity", "check", REQUEST, "--note", "ID").exit_code == 0
    assert channels.cli("deliver", REQUEST, "--via", "mail").exit_code == 0
    days = load_config(channels.config).delivery.retention_days
    now = dt.datetime.now(dt.UTC)
    with channels.ledger() as ledger:
        assert delivered_exports(ledger, dt.timedelta(days=days), now) == []
        later = now + dt.timedelta(days=days, minutes=1)
        assert delivered_exports(ledger, dt.timedelta(days=days), later) == [folder]
    swept = channels.cli("sweep")  # now: within the retention, the folder stays
    assert swept.exit_code == 0, swept.output
    assert folder.exists()


def test_pack_uses_aes_256(tmp_path, channels):
    folder = exported(channels, REQUEST, tmp_path)
    archive = pack(folder, tmp_path / "a.zip")
    raw = archive.path.read_bytes()
    # WinZip AE extra field (0x9901): vendor "AE", strength 3 = AES-256.
    at = raw.index(b"\x01\x99\x07\x00")
    assert raw[at + 6 : at + 8] == b"AE" and raw[at + 8] == 3
    assert archive.path.stat().st_mode & 0o777 == 0o600
    assert len(archive.password) >= 32


def test_erasure_is_not_executed_without_a_verified_identity(channels, sandbox_sqlite_url):
    channels.onprem_only()
    before = snapshot(sandbox_sqlite_url)
    request = "DSR-2026-1612"
    args = ["--subject", SUBJECT, "--request-id", request, "--approve", "--officer", "Ingrid"]
    refused = channels.cli("erase", *args)
    assert refused.exit_code == 2
    assert "identity is not verified" in refused.output
    assert snapshot(sandbox_sqlite_url) == before
    assert "executed" not in channels.events(request)
    assert channels.cli("identity", "check", request, "--note", "passport").exit_code == 0
    done = channels.cli("erase", *args)  # the approved plan resumes
    assert done.exit_code == 0, done.output
    assert "completed" in done.output
    assert snapshot(sandbox_sqlite_url) != before


def test_without_identity_required_the_skip_is_recorded(channels, sandbox_sqlite_url):
    channels.onprem_only()
    channels.set_identity(required=False)
    request = "DSR-2026-1613"
    args = ["--subject", SUBJECT, "--request-id", request, "--approve", "--officer", "Ingrid"]
    assert channels.cli("erase", *args).exit_code == 0
    trail = channels.events(request)
    assert trail.index("identity_not_required") < trail.index("executed")

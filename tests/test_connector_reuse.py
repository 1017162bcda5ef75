"""What a command keeps when it opens a source again in the same process (issue 18): Google's
API resources without credentials of their own, the parsed service-account key (each caller its
own copy and token, a new key parsed anew), and one verifying TLS context."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from connectors.analytics.client import _deletion_requests
from connectors.drive.client import SCOPES, _services
from connectors.google_auth import service_account_credentials
from connectors.tls import verifying_context
from sandbox.drive_part import write_service_account
from sandbox.emulators.google import GoogleState

# Nothing listens here: a request that went out would fail differently (connection refused).
NOWHERE = "http://127.0.0.1:9"


def test_the_shared_google_resources_never_send_a_request_themselves():
    services = _services(NOWHERE)
    assert _services(NOWHERE) is services  # built once per process and API address
    assert _services(NOWHERE + "/other") is not services
    with pytest.raises(RuntimeError, match=r"without execute\(http=\.\.\.\)"):
        services.files.get(fileId="f1").execute()  # no credentials of its own: refused
    with pytest.raises(RuntimeError, match=r"without execute\(http=\.\.\.\)"):
        services.values.get(spreadsheetId="s1", range="A1").execute()
    with pytest.raises(RuntimeError, match=r"without execute\(http=\.\.\.\)"):
        _deletion_requests(NOWHERE).upsert(body={}).execute()


def test_a_parsed_key_is_shared_but_each_caller_gets_its_own_credentials(tmp_path: Path):
    key = write_service_account(GoogleState(), NOWHERE, tmp_path / "key.json")
    first = service_account_credentials(key, None, SCOPES, "officer@example.com")
    second = service_account_credentials(key, None, SCOPES, "other@example.com")
    assert first is not second
    assert first.signer is second.signer  # the RSA key parsed once
    assert (first._subject, second._subject) == ("officer@example.com", "other@example.com")
    assert first.token is None and second.token is None
    assert set(first.scopes) == set(SCOPES)

    narrower = service_account_credentials(key, None, SCOPES[:1])
    assert list(narrower.scopes) == list(SCOPES[:1])

    write_service_account(GoogleState(), NOWHERE, key)  # the key rotated: a new key pair
    rotated = service_account_credentials(key, None, SCOPES, "officer@example.com")
    assert rotated.signer is not first.signer


def test_one_tls_context_that_verifies():
    context = verifying_context()
    assert verifying_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname

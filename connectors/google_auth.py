"""A Google service account's credentials from a kind's settings, for every Google kind
(Drive/Sheets, Analytics): the JSON key from a file or a secret, the kind's scopes, and the
Workspace user it acts as where domain-wide delegation is used."""

from __future__ import annotations

import json
from pathlib import Path

from google.oauth2 import service_account

from dsrflow.secrets import SecretRef


def service_account_credentials(
    key_file: Path | None,
    key: SecretRef | None,
    scopes: list[str] | tuple[str, ...],
    subject: str | None = None,
) -> service_account.Credentials:
    """Raises OSError, ValueError or LookupError (a secret not set) for a key it cannot use."""
    if key_file:
        info = json.loads(key_file.read_text(encoding="utf-8"))
    else:
        assert key is not None  # the settings require exactly one of the two
        info = json.loads(key.resolve())
    credentials = service_account.Credentials.from_service_account_info(info, scopes=scopes)
    return credentials.with_subject(subject) if subject else credentials

"""A Google service account's credentials from a kind's settings, for every Google kind
(Drive/Sheets, Analytics): the JSON key from a file or a secret, the kind's scopes, and the
Workspace user it acts as where domain-wide delegation is used."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from google.oauth2 import service_account

from dsrflow.secrets import SecretRef

# Parsing the key's RSA private key (with its consistency check) takes ~80 ms, and one command
# opens each Google source up to three times. The parsed credentials are kept per process, by
# the digest of the key's text and the scopes, so a changed key is parsed anew; every caller
# gets a copy of its own (its own token, as before).
_parsed: dict[tuple[str, tuple[str, ...]], service_account.Credentials] = {}


def service_account_credentials(
    key_file: Path | None,
    key: SecretRef | None,
    scopes: list[str] | tuple[str, ...],
    subject: str | None = None,
) -> service_account.Credentials:
    """Raises OSError, ValueError or LookupError (a secret not set) for a key it cannot use."""
    if key_file:
        text = key_file.read_text(encoding="utf-8")
    else:
        assert key is not None  # the settings require exactly one of the two
        text = key.resolve()
    cache_key = (hashlib.sha256(text.encode("utf-8")).hexdigest(), tuple(scopes))
    parsed = _parsed.get(cache_key)
    if parsed is None:
        info = json.loads(text)
        parsed = service_account.Credentials.from_service_account_info(info, scopes=scopes)
        _parsed[cache_key] = parsed
    # A copy sharing only the parsed key: no token or subject passes between callers.
    return parsed.with_subject(subject) if subject else parsed.with_scopes(list(scopes))

"""OAuth 2 for the emulator: ``POST /token`` takes the JWT-bearer grant that a google-auth
service-account credential sends (domain-wide delegation: the ``sub`` claim names the user the
service account acts for) and hands out bearer tokens that the API routes check.

The assertion's RS256 signature is verified against the public key of a registered service
account, its audience must be this token endpoint and it may live at most an hour — the checks
Google's endpoint makes. Errors here are OAuth 2's (``{"error": "invalid_grant", ...}``).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import Response

from sandbox.emulators.google.errors import GoogleError, GoogleJSON
from sandbox.emulators.google.state import GoogleState, Token

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/"
# The scopes each kind of call accepts, as the discovery documents shipped with
# google-api-python-client list them (drive.v3.json files.list/get; sheets.v4.json
# spreadsheets.get, values.batchGet / spreadsheets.batchUpdate, values.update). A Sheets scope
# alone does not open Drive's files.list, nor drive.metadata.readonly the Sheets API.
DRIVE_READ_SCOPES = frozenset(
    SCOPE + s
    for s in (
        "drive",
        "drive.appdata",
        "drive.file",
        "drive.meet.readonly",
        "drive.metadata",
        "drive.metadata.readonly",
        "drive.photos.readonly",
        "drive.readonly",
    )
)
SHEETS_READ_SCOPES = frozenset(
    SCOPE + s
    for s in ("drive", "drive.file", "drive.readonly", "spreadsheets", "spreadsheets.readonly")
)
SHEETS_WRITE_SCOPES = frozenset(SCOPE + s for s in ("drive", "drive.file", "spreadsheets"))
# userDeletion.userDeletionRequest.upsert (analytics.v3.json) takes this scope alone.
ANALYTICS_DELETION_SCOPES = frozenset({SCOPE + "analytics.user.deletion"})
# Kept for callers that ask "may this token read at all".
READ_SCOPES = DRIVE_READ_SCOPES | SHEETS_READ_SCOPES
WRITE_SCOPES = SHEETS_WRITE_SCOPES


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return GoogleJSON({"error": error, "error_description": description}, status_code=status)


def token_endpoint(state: GoogleState) -> Any:
    async def token(request: Request) -> Response:
        # urlencoded by hand: Starlette's form parser needs python-multipart, not a dependency.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type')}"
            )
        try:
            header_b64, payload_b64, signature_b64 = str(form.get("assertion", "")).split(".")
            header = json.loads(_b64(header_b64))
            claims = json.loads(_b64(payload_b64))
            signature = _b64(signature_b64)
        except ValueError:
            return _oauth_error("invalid_request", "Invalid JWT: malformed assertion")
        key = state.service_accounts.get(claims.get("iss"))
        if header.get("alg") != "RS256" or not isinstance(key, rsa.RSAPublicKey):
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        try:
            key.verify(
                signature,
                f"{header_b64}.{payload_b64}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            return _oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        if not str(claims.get("aud", "")).rstrip("/").endswith("/token"):
            return _oauth_error("invalid_grant", "Invalid JWT: audience is not the token endpoint")
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return _oauth_error("invalid_scope", "Empty or missing scope not allowed.")
        subject = claims.get("sub")
        if subject and subject != claims["iss"]:
            # Domain-wide delegation: the Admin console lists, per service account client, the
            # scopes it may use for the domain's users; asking for one more (or having none) is
            # 401 unauthorized_client (googleapis/google-auth-library-ruby#210,
            # hlavki/g-suite-identity-sync#7). A subject not in the domain: invalid_grant.
            granted = state.delegations.get(claims["iss"])
            if granted is None or not scopes <= granted:
                return _oauth_error(
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or "
                    "client not authorized for any of the scopes requested.",
                    status=401,
                )
            if state.domain_users is not None and subject.lower() not in state.domain_users:
                return _oauth_error("invalid_grant", "Invalid email or User ID")
        user = subject or claims["iss"]
        access_token = state.issue_token(user, scopes)
        return GoogleJSON(
            {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}
        )

    return token


def authorise(
    state: GoogleState, request: Request, *, write: bool = False, api: str = "sheets"
) -> Token:
    """The caller's token, or the 401/403 Google answers without a usable one. ``api`` is
    ``drive``, ``sheets`` or ``analytics`` (user deletion): each accepts its own scopes."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise GoogleError(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
            reason="required",
            location="Authorization",
            location_type="header",
        )
    token = state.token(header[7:].strip())
    if token is None:
        raise GoogleError(
            401,
            "Invalid Credentials",
            reason="authError",
            location="Authorization",
            location_type="header",
        )
    if api == "drive":
        accepted, service = DRIVE_READ_SCOPES, "drive.googleapis.com"
    elif api == "analytics":
        accepted, service = ANALYTICS_DELETION_SCOPES, "analytics.googleapis.com"
    else:
        accepted = SHEETS_WRITE_SCOPES if write else SHEETS_READ_SCOPES
        service = "sheets.googleapis.com"
    if not token.scopes & accepted:
        # What Google's front end answers for a token without the method's scopes: 403
        # insufficientPermissions ("Insufficient Permission" in errors[], as quoted from Drive v3
        # in GoogleCloudPlatform/genai-for-marketing#45) with an ErrorInfo
        # ACCESS_TOKEN_SCOPE_INSUFFICIENT (https://cloud.google.com/apis/design/errors).
        raise GoogleError(
            403,
            "Request had insufficient authentication scopes.",
            reason="insufficientPermissions",
            status="PERMISSION_DENIED",
            detail_message="Insufficient Permission",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "domain": "googleapis.com",
                    "metadata": {"service": service},
                }
            ],
        )
    return token

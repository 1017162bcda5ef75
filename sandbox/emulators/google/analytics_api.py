"""The Google Analytics User Deletion API (Management API v3, ``analytics.v3.json``):
``POST /analytics/v3/userDeletion/userDeletionRequests:upsert``.

From the reference (developers.google.com/analytics/devguides/config/userdeletion/v3, and the
discovery document shipped with google-api-python-client):
- scope ``analytics.user.deletion`` only (403 insufficientPermissions otherwise, auth.py);
- the body is a UserDeletionRequest: ``kind`` (``analytics#userDeletionRequest``), ``id``
  ``{type, userId}`` with ``type`` one of ``CLIENT_ID``, ``USER_ID``, ``APP_INSTANCE_ID``, and
  exactly one of ``propertyId`` (GA4), ``webPropertyId`` (Universal Analytics, ``UA-…``) or
  ``firebaseProjectId``; anything else is 400 badRequest (``deletionRequestTime`` is read-only);
- the caller must have the Editor role on the property: 403 insufficientPermissions
  "User does not have sufficient permissions for this property";
- the answer is the resource with ``deletionRequestTime`` (RFC 3339); an upsert for the same id
  replaces the earlier one (it is an upsert: filing twice is safe);
- quota: 500 requests a day per calling project (limits-quotas page). Exhausted, the
  Management API answers 403 ``dailyLimitExceeded`` ("Management API errors": dailyLimitExceeded
  "Indicates that user has exceeded the daily quota"); the emulator counts per UTC day.
  Which of 403 dailyLimitExceeded and 429 RESOURCE_EXHAUSTED the front end sends today for this
  API is not documented: the emulator sends the documented one.

Not Google's: ``GET /_emulator/analytics`` lists what was filed (and the day's count), ``POST
/_emulator/analytics {"daily_quota": N}`` sets the quota, so that tests and the sandbox's user
see what the API holds rather than take a client's word for it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.emulators.google.auth import authorise
from sandbox.emulators.google.errors import GoogleError, GoogleJSON
from sandbox.emulators.google.state import GoogleState

PATH = "/analytics/v3/userDeletion/userDeletionRequests:upsert"
ID_TYPES = ("CLIENT_ID", "USER_ID", "APP_INSTANCE_ID")
KIND = "analytics#userDeletionRequest"
TARGETS = ("propertyId", "webPropertyId", "firebaseProjectId")
FIELDS = {"kind", "id", "deletionRequestTime", *TARGETS}


def _bad(message: str) -> GoogleError:
    return GoogleError(400, message, reason="badRequest")


def routes(state: GoogleState) -> list[Route]:
    async def upsert(request: Request) -> Response:
        token = authorise(state, request, api="analytics")
        analytics = state.analytics
        today = dt.datetime.now(dt.UTC).date().isoformat()
        with state.lock:
            if analytics.used.get(today, 0) >= analytics.daily_quota:
                raise GoogleError(
                    403,
                    "Quota Error: The daily quota of user deletion requests has been exceeded.",
                    reason="dailyLimitExceeded",
                    domain="usageLimits",
                )
            analytics.used[today] = analytics.used.get(today, 0) + 1
        try:
            body: Any = json.loads(await request.body() or b"{}")
        except ValueError:
            raise _bad("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise _bad("Invalid JSON payload received.")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise _bad(f'Invalid JSON payload received. Unknown name "{unknown[0]}".')
        if body.get("kind", KIND) != KIND:
            raise _bad(f"Invalid value for kind: {body.get('kind')}")
        ident = body.get("id")
        if not isinstance(ident, dict) or not ident.get("userId") or not ident.get("type"):
            raise _bad("Field id.userId and id.type are required.")
        if ident["type"] not in ID_TYPES:
            raise _bad(f"Invalid value for id.type: {ident['type']}")
        targets = [t for t in TARGETS if body.get(t)]
        if len(targets) != 1:
            raise _bad("Exactly one of propertyId, webPropertyId or firebaseProjectId is required.")
        target = str(body[targets[0]])
        if token.user not in analytics.editors.get(target, set()):
            raise GoogleError(
                403,
                "User does not have sufficient permissions for this property.",
                reason="insufficientPermissions",
            )
        when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with state.lock:
            analytics.deletions[(target, ident["type"], str(ident["userId"]))] = when
        answer = {
            "kind": KIND,
            "id": {"type": ident["type"], "userId": str(ident["userId"])},
            targets[0]: target,
            "deletionRequestTime": when,
        }
        return GoogleJSON(answer)

    async def control(request: Request) -> Response:
        analytics = state.analytics
        with state.lock:
            if request.method == "POST":
                body = await request.json()
                analytics.daily_quota = int(body.get("daily_quota", analytics.daily_quota))
            filed = [
                {"propertyId": p, "type": t, "userId": u, "deletionRequestTime": when}
                for (p, t, u), when in sorted(analytics.deletions.items())
            ]
            return GoogleJSON(
                {
                    "deletions": filed,
                    "used": dict(analytics.used),
                    "daily_quota": analytics.daily_quota,
                }
            )

    return [
        Route(PATH, upsert, methods=["POST"]),
        Route("/_emulator/analytics", control, methods=["GET", "POST"]),
    ]

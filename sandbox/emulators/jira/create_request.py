"""Create customer request (``POST /rest/servicedeskapi/request``, Jira Service Management Cloud
REST API, group "Request"): how a customer raises a request on a desk through the API, as the
portal does.

The body, as the reference gives it (RequestCreateDTO): ``serviceDeskId``, ``requestTypeId``,
``requestFieldValues`` ("a map of Jira field IDs and their values"; the emulator's request types
take ``summary`` (required) and ``description``), ``raiseOnBehalfOf`` ("the accountId of the
customer that the request is being raised on behalf of"), ``requestParticipants`` (accountIds)
and ``channel``. "raiseOnBehalfOf is not available to Users who have the customer permission
only. requestParticipants is not available to Users who have the customer permission only";
"Permission to create requests in the specified service desk" is required. The answer is 201
with the CustomerRequest, as Get customer requests lists it.

Choices of the emulator where the reference leaves room: a customer may raise requests on a
desk whose customer list holds them (an "open" desk, where anyone may, is not emulated); the
refusals of ``raiseOnBehalfOf``/``requestParticipants`` to a customer and of a customer of
another desk are 403 with Service Management's error body; a new request's status is
"Waiting for support" (the default workflow's first status for a customer's request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.jira.store import REQUEST_TYPE_FIELD, jira_time

if TYPE_CHECKING:
    from sandbox.emulators.jira.app import JiraEmulator

KNOWN = {
    "serviceDeskId",
    "requestTypeId",
    "requestFieldValues",
    "raiseOnBehalfOf",
    "requestParticipants",
    "channel",
    "isAdfRequest",
    "form",
}
FIELDS = {"summary", "description"}


@dataclass
class CustomerRequestCreation:
    emulator: JiraEmulator

    def routes(self, sd: str) -> list[Route]:
        return [Route(f"{sd}/request", self.create, methods=["POST"])]

    async def create(self, request: Request) -> Response:
        from sandbox.emulators.jira.app import _json_body, _params, servicedesk_error

        _params(request, set(), servicedesk=True)
        body = await _json_body(request, servicedesk=True)
        store = self.emulator.store
        unknown = sorted(set(body) - KNOWN)
        if unknown:
            return servicedesk_error(400, f'Unrecognized field "{unknown[0]}"')
        desk = store.servicedesks.get(str(body.get("serviceDeskId") or ""))
        if desk is None:
            return servicedesk_error(404, "The service desk does not exist.")
        type_name = desk.request_types.get(str(body.get("requestTypeId") or ""))
        if type_name is None:
            return servicedesk_error(404, "The request type does not exist on this service desk.")
        values = body.get("requestFieldValues") or {}
        if not isinstance(values, dict):
            return servicedesk_error(400, "requestFieldValues must be a map of field ids.")
        extra = sorted(set(values) - FIELDS)
        if extra:
            return servicedesk_error(400, f"Field '{extra[0]}' is not on this request type.")
        summary = values.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            return servicedesk_error(400, "Summary: You must specify a summary of the issue.")
        caller = self.emulator._current_account(request)
        user = store.users.get(caller) if caller else None
        if user is None:
            return servicedesk_error(403, "The caller has no account on this site.")
        on_behalf = body.get("raiseOnBehalfOf")
        participants = body.get("requestParticipants") or []
        if user.kind == "customer":
            if on_behalf or participants:
                return servicedesk_error(
                    403,
                    "raiseOnBehalfOf and requestParticipants are not available to customers.",
                )
            if caller not in desk.customers:
                return servicedesk_error(
                    403, "You do not have permission to create requests in this service desk."
                )
        reporter = str(on_behalf) if on_behalf else caller
        if reporter not in store.users:
            return servicedesk_error(400, f"No customer with accountId {reporter}.")
        if not isinstance(participants, list) or any(p not in store.users for p in participants):
            return servicedesk_error(400, "requestParticipants must name existing accountIds.")
        with store.lock:
            number = 1 + max(
                (
                    int(k.rsplit("-", 1)[1])
                    for k in store.issues
                    if k.startswith(f"{desk.project_key}-")
                ),
                default=0,
            )
            fields: dict[str, Any] = {
                "summary": summary,
                "description": values.get("description") or "",
                "status": {"name": "Waiting for support"},
                "created": jira_time(),
                "reporter": {"accountId": reporter},
                REQUEST_TYPE_FIELD: {"requestType": {"name": type_name}},
            }
            issue = store.add_issue(f"{desk.project_key}-{number}", fields, participants)
        render = self.emulator._renderer(request)
        return JSONResponse(self.emulator._customer_request(render, issue), status_code=201)

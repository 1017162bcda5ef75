"""Reading new privacy requests from a Jira Service Management desk (dsrflow/intake.py).

Service Management's own API, over ``JiraClient`` (the ``jira`` package does not wrap it): the
desk of the project (Get service desks), the id of the request type by its name (Get request
types, GET /rest/servicedeskapi/servicedesk/{serviceDeskId}/requesttype: listed whole and
compared by name, because a ``searchQuery`` leaves hidden request types out), then every
request of that type (Get customer requests, GET /rest/servicedeskapi/request with
``serviceDeskId`` and ``requestTypeId``). That list is ordered by latest activity, not by
creation, and has no date filter: every request of the type is read on each run (privacy
requests are few) and the ledger knows which it has opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from connectors.base import SourceUnavailable
from connectors.jira.client import JiraClient
from connectors.jira.desks import SD_PAGE, sd_pages, servicedesks
from dsrflow.intake import Channel, Incoming


def request_type_id(client: JiraClient, desk_id: str, name: str) -> str:
    """The id of the desk's request type called ``name`` (case-insensitive)."""
    wanted = name.casefold()
    for kind in sd_pages(
        lambda start: client.get(
            "listing request types",
            f"/rest/servicedeskapi/servicedesk/{desk_id}/requesttype",
            {"start": start, "limit": SD_PAGE},
        )
    ):
        if str(kind.get("name", "")).casefold() == wanted:
            return str(kind["id"])
    raise SourceUnavailable(
        client.source_name,
        f"service desk {desk_id} has no request type named {name!r} (intake.servicedesk."
        "request_type must name one exactly as the portal shows it)",
    )


def privacy_requests(client: JiraClient, project: str, request_type: str) -> Iterator[Incoming]:
    """Every request of ``request_type`` on the desk of ``project``."""
    desk = next(servicedesks(client, [project]), None)
    if desk is None:
        raise SourceUnavailable(
            client.source_name, f"no service desk has the project key {project!r}"
        )
    desk_id = str(desk["id"])
    type_id = request_type_id(client, desk_id, request_type)
    for raw in sd_pages(
        lambda start: client.get(
            "listing customer requests",
            "/rest/servicedeskapi/request",
            {
                "serviceDeskId": desk_id,
                "requestTypeId": type_id,
                "requestStatus": "ALL_REQUESTS",
                "start": start,
                "limit": SD_PAGE,
            },
        )
    ):
        yield incoming(raw)


def incoming(raw: dict[str, Any]) -> Incoming:
    """A CustomerRequest as the intake reads it: its creation time, the reporter (whose
    address Jira may leave out: then the account id), summary and description."""
    created = dt.datetime.fromtimestamp(raw["createdDate"]["epochMillis"] / 1000, dt.UTC)
    reporter = raw.get("reporter") or {}
    values = {
        v.get("fieldId"): v.get("value")
        for v in raw.get("requestFieldValues") or []
        if isinstance(v, dict)
    }
    text = "\n".join(str(values.get(f) or "") for f in ("summary", "description"))
    return Incoming(
        channel=Channel.SERVICEDESK,
        reference=str(raw["issueKey"]),
        received_at=created,
        requester_email=reporter.get("emailAddress"),
        requester_account=reporter.get("accountId"),
        text=text,
    )

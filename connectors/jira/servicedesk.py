"""A customer request as the subject's channel: who takes part in it, and attaching the answer.

* Who: the request's reporter (Get issue, ``fields=reporter``: Jira's user shape, whose
  ``emailAddress`` "depending on the user's privacy setting, may be returned as null") and its
  participants (Service Management's Get request participants, paged).
* Attaching: Service Management's two steps, ``attachTemporaryFile`` on the request's service
  desk (multipart, ``X-Atlassian-Token: no-check`` against XSRF, ``X-ExperimentalApi: opt-in``
  as Atlassian's example sends it) and ``request/{key}/attachment`` with ``public: true``
  (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-servicedesk/
  #api-rest-servicedeskapi-servicedesk-servicedeskid-attachtemporaryfile-post,
  .../api-group-request/#api-rest-servicedeskapi-request-issueidorkey-attachment-post).

The attachment is a write: a lost answer is settled by reading the issue's attachments for the
file's (unique) name, never by sending it again blindly (connectors/writes.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.base import SourceUnavailable
from connectors.jira.client import JiraClient

SD = "/rest/servicedeskapi"


@dataclass(frozen=True)
class Person:
    account_id: str
    email: str | None  # None: hidden by the account's privacy settings, or none


@dataclass(frozen=True)
class RequestPeople:
    key: str
    project: str
    reporter: Person | None
    participants: list[Person]


def _person(user: dict[str, Any] | None) -> Person | None:
    if not user or not user.get("accountId"):
        return None
    return Person(str(user["accountId"]), user.get("emailAddress") or None)


def request_people(client: JiraClient, key: str) -> RequestPeople:
    """The reporter and every participant of the customer request ``key``."""
    issue = client.get_json(f"reading {key}", f"issue/{key}", {"fields": "reporter,project"})
    fields = issue.get("fields") or {}
    participants: list[Person] = []
    start = 0
    while True:
        page = client.get(
            f"reading {key}'s participants",
            f"{SD}/request/{key}/participant",
            {"start": start, "limit": 50},
        )
        participants += [p for u in page.get("values") or [] if (p := _person(u))]
        if page.get("isLastPage", True) or not page.get("values"):
            break
        start += len(page["values"])
    return RequestPeople(
        key=str(issue.get("key") or key),
        project=str((fields.get("project") or {}).get("key") or key.rsplit("-", 1)[0]),
        reporter=_person(fields.get("reporter")),
        participants=participants,
    )


def service_desk_of(client: JiraClient, project: str) -> str:
    """The id of the service desk of ``project``."""
    start = 0
    while True:
        page = client.get(
            "reading the service desks", f"{SD}/servicedesk", {"start": start, "limit": 50}
        )
        for desk in page.get("values") or []:
            if desk.get("projectKey") == project:
                return str(desk["id"])
        if page.get("isLastPage", True) or not page.get("values"):
            raise SourceUnavailable(client.source_name, f"no service desk for project {project}")
        start += len(page["values"])


def _attached(client: JiraClient, key: str, filename: str) -> bool:
    issue = client.get_json(
        f"reading {key}'s attachments", f"issue/{key}", {"fields": "attachment"}
    )
    files = (issue.get("fields") or {}).get("attachment") or []
    return any(f.get("filename") == filename for f in files)


def attach_public(
    client: JiraClient, key: str, project: str, filename: str, content: bytes, comment: str
) -> None:
    """Attach ``content`` to the customer request ``key`` as a public attachment, with
    ``comment`` before it. ``filename`` must be unique on the request (it settles a lost
    answer)."""
    desk = service_desk_of(client, project)
    session = client.jira._session
    # The session's default type is JSON: None lets requests set the multipart type itself.
    upload_headers: dict[str, Any] = {
        "X-Atlassian-Token": "no-check",
        "X-ExperimentalApi": "opt-in",
        "Content-Type": None,
    }
    # Retried like a read: a repeated upload leaves at most an unused temporary file, which
    # is never attached to anything; only the attaching below is a write to the request.
    uploaded = client.call(
        f"uploading {filename}",
        lambda: session.post(
            client.url(f"{SD}/servicedesk/{desk}/attachTemporaryFile"),
            files={"file": (filename, content, "application/zip")},
            headers=upload_headers,
        ).json(),
    )
    ids = [t["temporaryAttachmentId"] for t in uploaded.get("temporaryAttachments") or []]
    if len(ids) != 1:
        raise SourceUnavailable(client.source_name, f"Jira kept {len(ids)} files of one upload")
    body = {"temporaryAttachmentIds": ids, "public": True, "additionalComment": {"body": comment}}
    client.call(
        f"attaching {filename} to {key}",
        lambda: session.post(
            client.url(f"{SD}/request/{key}/attachment"),
            data=json.dumps(body),
            headers={"X-ExperimentalApi": "opt-in", "Content-Type": "application/json"},
        ),
        confirm=lambda: _attached(client, key, filename),
    )

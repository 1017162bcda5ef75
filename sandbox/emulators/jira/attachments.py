"""Service Management's two-step attachment of a file to a customer request, as the Jira Service
Management Cloud REST API documents it (group "Servicedesk" and "Request"):

1. ``POST /rest/servicedeskapi/servicedesk/{serviceDeskId}/attachTemporaryFile``: a
   ``multipart/form-data`` body whose file parts are named ``file``; "because this method
   accepts multipart/form-data, it has XSRF protection on it. This means you must submit a
   header of X-Atlassian-Token: no-check with the request or it will be blocked". Answers
   ``{"temporaryAttachments": [{"temporaryAttachmentId", "fileName"}]}``.
2. ``POST /rest/servicedeskapi/request/{issueIdOrKey}/attachment`` with
   ``{"temporaryAttachmentIds": [...], "public": bool, "additionalComment": {"body": ...}}``:
   201 with ``{"comment": CommentDTO, "attachments": PagedDTO<AttachmentDTO>}``; the comment is
   prepended to the attachments and is public when they are.

The files land on the issue's ``attachment`` field (the platform's Attachment shape), where a
client reads them back, and in ``files`` (content by attachment id) for the tests. A temporary
attachment is used once. Choices of the emulator: the XSRF refusal is 403 with Service
Management's error body (Atlassian does not document the body); temporary files never expire.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.emulators.jira.store import jira_time

if TYPE_CHECKING:
    from sandbox.emulators.jira.app import JiraEmulator


@dataclass
class Temporary:
    desk: str
    name: str
    content: bytes
    content_type: str


@dataclass
class Attachments:
    """The routes and their state (temporary files, and every attached file's content)."""

    emulator: JiraEmulator
    temporary: dict[str, Temporary] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(910441317820424))

    def routes(self, sd: str) -> list[Route]:
        return [
            Route(
                f"{sd}/servicedesk/{{desk}}/attachTemporaryFile",
                self.attach_temporary,
                methods=["POST"],
            ),
            Route(f"{sd}/request/{{key}}/attachment", self.attach, methods=["POST"]),
            Route("/rest/api/2/attachment/content/{id}", self.content, methods=["GET"]),
            Route("/secure/attachment/{id}/{name}", self.download, methods=["GET"]),
        ]

    def _attachment(self, attachment_id: str) -> dict[str, Any] | None:
        with self.emulator.store.lock:
            for issue in self.emulator.store.issues.values():
                for attachment in issue.fields.get("attachment") or []:
                    if attachment.get("id") == attachment_id:
                        return dict(attachment)
        return None

    async def content(self, request: Request) -> Response:
        """Get attachment content (GET /rest/api/2/attachment/content/{id}, Jira Cloud platform
        REST API v2, group Issue attachments): "redirect" (default true) answers 303 to the
        file's download address; false answers the bytes at once."""
        from sandbox.emulators.jira.app import _params, platform_error

        params = _params(request, {"redirect"})
        attachment = self._attachment(request.path_params["id"])
        if attachment is None or attachment["id"] not in self.files:
            return platform_error(404, "The attachment does not exist.")
        if params.get("redirect", "true").lower() != "false":
            return Response(status_code=303, headers={"Location": attachment["content"]})
        return Response(self.files[attachment["id"]], media_type=attachment["mimeType"])

    async def download(self, request: Request) -> Response:
        """The attachment's ``content`` address, where its bytes are served."""
        from sandbox.emulators.jira.app import platform_error

        attachment = self._attachment(request.path_params["id"])
        if attachment is None or attachment["filename"] != request.path_params["name"]:
            return platform_error(404, "The attachment does not exist.")
        return Response(self.files[attachment["id"]], media_type=attachment["mimeType"])

    async def attach_temporary(self, request: Request) -> Response:
        from sandbox.emulators.jira.app import servicedesk_error

        if request.headers.get("x-atlassian-token", "").lower() != "no-check":
            return servicedesk_error(403, "XSRF check failed")
        desk = request.path_params["desk"]
        if desk not in self.emulator.store.servicedesks:
            return servicedesk_error(404, "The service desk does not exist.")
        parts = _form_files(request.headers.get("content-type", ""), await request.body())
        if not parts:
            return servicedesk_error(400, "No file named 'file' in the multipart request.")
        answer = []
        with self.emulator.store.lock:
            for name, content, content_type in parts:
                temp_id = f"temp{next(self._ids)}"
                self.temporary[temp_id] = Temporary(desk, name, content, content_type)
                answer.append({"temporaryAttachmentId": temp_id, "fileName": name})
        return JSONResponse({"temporaryAttachments": answer})

    async def attach(self, request: Request) -> Response:
        from sandbox.emulators.jira.app import _json_body, servicedesk_error

        store = self.emulator.store
        issue = store.issue(request.path_params["key"])
        if issue is None:
            return servicedesk_error(404, "The request does not exist.")
        body = await _json_body(request, servicedesk=True)
        ids = body.get("temporaryAttachmentIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return servicedesk_error(400, "temporaryAttachmentIds must name temporary files.")
        public = body.get("public", True) is not False
        author = self.emulator._current_account(request)
        render = self.emulator._renderer(request)
        base = str(request.base_url).rstrip("/")
        with store.lock:
            missing = [i for i in ids if i not in self.temporary]
            if missing:
                return servicedesk_error(400, f"Temporary attachment {missing[0]} not found.")
            desk = store.servicedesks[self.temporary[ids[0]].desk]
            if desk.project_key != issue.project:
                return servicedesk_error(400, "The temporary attachment is of another desk.")
            created = jira_time()
            attached = []
            for temp_id in ids:
                temp = self.temporary.pop(temp_id)
                attachment_id = str(next(self._ids))
                self.files[attachment_id] = temp.content
                attached.append(
                    {
                        "self": f"{base}/rest/api/2/attachment/{attachment_id}",
                        "id": attachment_id,
                        "filename": temp.name,
                        "author": render.user(author),
                        "created": created,
                        "size": len(temp.content),
                        "mimeType": temp.content_type,
                        "content": f"{base}/secure/attachment/{attachment_id}/{temp.name}",
                    }
                )
            issue.fields.setdefault("attachment", []).extend(attached)
            text = (body.get("additionalComment") or {}).get("body") or ""
            comment = store.add_comment(issue, author, text)
            comment.public = public
        shown = [
            {
                "filename": a["filename"],
                "author": a["author"],
                "created": _date_dto(created),
                "size": a["size"],
                "mimeType": a["mimeType"],
                "_links": {"content": a["content"]},
            }
            for a in attached
        ]
        return JSONResponse(
            {
                "comment": {
                    "id": comment.id,
                    "body": comment.body,
                    "public": comment.public,
                    "author": render.user(author),
                    "created": _date_dto(comment.created),
                },
                "attachments": {
                    "size": len(shown),
                    "start": 0,
                    "limit": len(shown),
                    "isLastPage": True,
                    "values": shown,
                },
            },
            status_code=201,
        )


def _date_dto(jira: str) -> dict[str, Any]:
    """Service Management's DateDTO (``iso8601``, ``jira``, ``friendly``, ``epochMillis``)."""
    moment = dt.datetime.strptime(jira, "%Y-%m-%dT%H:%M:%S.%f%z")
    return {
        "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "jira": jira,
        "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
        "epochMillis": int(moment.timestamp() * 1000),
    }


def _form_files(content_type: str, body: bytes) -> list[tuple[str, bytes, str]]:
    """The ``file`` parts of a multipart/form-data body: (file name, content, content type)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return []
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    files = []
    for part in message.iter_parts():
        disposition = part.get("content-disposition", "")
        if part.get_param("name", header="content-disposition") != "file" or not disposition:
            continue
        name = part.get_filename() or "attachment"
        content = part.get_payload(decode=True) or b""
        files.append((name, bytes(content), part.get_content_type()))
    return files

"""``POST /batch/drive/v3``: several Drive calls in one multipart/mixed request.

Each part is ``Content-Type: application/http`` holding a whole HTTP request (``GET
/drive/v3/files/ID?fields=… HTTP/1.1``, headers, body); the answer is multipart/mixed with one
``application/http`` part per call, ``Content-ID: <response-ID>`` echoing the call's id. Inner
calls go through the whole app (auth, quota, fault injection) and count against quotas one by
one, as Google's do. Drive takes at most 100 calls per batch.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from collections.abc import Callable
from http import HTTPStatus

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.emulators.google.errors import GoogleError

MAX_CALLS = 100


def _parse_inner(payload: str) -> tuple[str, str, dict[str, str], bytes]:
    request_line, _, rest = payload.lstrip("\r\n").partition("\n")
    parts = request_line.strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise GoogleError(400, "Failed to parse batch request, error: malformed request line.")
    method, target, _ = parts
    head, _, body = rest.replace("\r\n", "\n").partition("\n\n")
    headers = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers, body.encode()


def route(get_app: Callable[[], ASGIApp]) -> Route:
    async def batch(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/mixed"):
            raise GoogleError(
                400, "Failed to parse batch request, error: expected multipart/mixed."
            )
        raw = await request.body()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        if not message.is_multipart():
            raise GoogleError(400, "Failed to parse batch request, error: no parts.")
        parts = list(message.iter_parts())
        if len(parts) > MAX_CALLS:
            raise GoogleError(400, f"A batch may hold at most {MAX_CALLS} calls.")
        app: ASGIApp = get_app()
        outer_auth = request.headers.get("authorization")
        boundary = "batch_" + secrets.token_hex(12)
        out: list[str] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as client:
            for part in parts:
                content_id = (part.get("Content-ID") or "").strip().strip("<>")
                payload = part.get_payload(decode=True) or b""
                method, target, headers, body = _parse_inner(payload.decode("utf-8"))
                if not target.startswith("/drive/v3/"):
                    answer = GoogleError(400, f"Batch requests to {target} are not allowed here.")
                    status, answer_body = 400, answer.response().body
                    answer_type = "application/json; charset=UTF-8"
                else:
                    headers.pop("host", None)
                    headers.pop("content-length", None)
                    if outer_auth and "authorization" not in headers:
                        headers["authorization"] = outer_auth
                    inner = await client.request(method, target, headers=headers, content=body)
                    status, answer_body = inner.status_code, inner.content
                    answer_type = inner.headers.get("content-type", "application/json")
                out.append(
                    f"--{boundary}\r\nContent-Type: application/http\r\n"
                    f"Content-ID: <response-{content_id}>\r\n\r\n"
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                    f"Content-Type: {answer_type}\r\nContent-Length: {len(answer_body)}\r\n\r\n"
                    + answer_body.decode("utf-8")
                    + "\r\n"
                )
        text = "".join(out) + f"--{boundary}--\r\n"
        return Response(text.encode(), media_type=f"multipart/mixed; boundary={boundary}")

    return Route("/batch/drive/v3", batch, methods=["POST"])

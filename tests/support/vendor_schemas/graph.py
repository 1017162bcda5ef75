"""Graph v1.0 answers against the msgraph-sdk's own models (generated from Graph's published
metadata): each route's body is parsed into its model as the SDK parses it; a property the
model does not know (it lands in ``additional_data``) or a value the model cannot read (the SDK
silently drops it: it is missing when the parsed object is written back) is reported. OData
annotations (``@odata.*``) are allowed anywhere, as OData JSON format 4.01 §4.5 allows them, and
so is ``@removed`` on an item of a delta answer (https://learn.microsoft.com/graph/delta-query-overview).
Errors: Graph's error resource (``ODataError``, https://learn.microsoft.com/graph/errors)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node import JsonParseNode
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.attachment import Attachment
from msgraph.generated.models.attachment_collection_response import AttachmentCollectionResponse
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.mail_folder_collection_response import (
    MailFolderCollectionResponse,
)
from msgraph.generated.models.message import Message
from msgraph.generated.models.message_collection_response import MessageCollectionResponse
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.item.messages.delta.delta_get_response import DeltaGetResponse

Model = type[Parsable]
_ID = r"[^/]+"
# (method, path below /v1.0, model of the answer; None: no body). The routes the connectors use
# (DESIGN.md), as Graph's v1.0 reference gives each response.
ROUTES: list[tuple[str, re.Pattern[str], Model | None]] = [
    ("GET", re.compile(r"/users"), UserCollectionResponse),
    ("GET", re.compile(rf"/users/{_ID}"), User),
    (
        "GET",
        re.compile(rf"/users/{_ID}/mailFolders(/{_ID}/childFolders)?"),
        MailFolderCollectionResponse,
    ),
    (
        "GET",
        re.compile(rf"/users/{_ID}/mailFolders/{_ID}"),
        MailFolder,
    ),
    (
        "GET",
        re.compile(rf"/users/{_ID}(/mailFolders/{_ID})?/messages/delta(\(\))?"),
        DeltaGetResponse,
    ),
    (
        "GET",
        re.compile(rf"/users/{_ID}(/mailFolders/{_ID})?/messages"),
        MessageCollectionResponse,
    ),
    ("GET", re.compile(rf"/users/{_ID}/messages/{_ID}"), Message),
    (
        "GET",
        re.compile(rf"/users/{_ID}/messages/{_ID}/attachments"),
        AttachmentCollectionResponse,
    ),
    ("DELETE", re.compile(rf"/users/{_ID}/messages/{_ID}"), None),
    ("POST", re.compile(rf"/users/{_ID}/messages/{_ID}/permanentDelete"), None),
    ("POST", re.compile(rf"/users/{_ID}/sendMail"), None),  # 202 Accepted, no body
]
NOT_API = re.compile(r"^/(_emulator/|token|oauth2|[^/]+/oauth2/)")


def check(method: str, path: str, status: int, body: bytes, request_body: bytes) -> list[str]:
    """What in this answer the SDK's models do not allow (empty: conforms)."""
    if NOT_API.match(path):
        return []
    if not path.startswith("/v1.0/"):
        return [f"{method} {path}: not below the v1.0 root"]
    path = path.removeprefix("/v1.0")
    if path == "/$batch" and method == "POST" and status < 400:
        return _batch(json.loads(body), json.loads(request_body))
    return _answer(method, path.split("?", 1)[0], status, body.strip() and json.loads(body))


def _answer(method: str, path: str, status: int, body: Any) -> list[str]:
    if status >= 400:
        return _against(ODataError, body, f"{status} error")
    for verb, pattern, model in ROUTES:
        if verb == method and pattern.fullmatch(path):
            if model is None:
                return [f"{method} {path}: Graph answers no body here"] if body else []
            return _against(model, body, f"{method} {path}")
    return [f"{method} {path}: a route the v1.0 reference of the connectors' calls does not list"]


def _batch(answer: Any, asked: Any) -> list[str]:
    """JSON batching (https://learn.microsoft.com/graph/json-batching): ``responses`` of
    ``id``, ``status``, ``headers``, ``body``; each body checked as its own request's answer."""
    problems = []
    requests = {r["id"]: r for r in asked.get("requests", [])}
    if set(answer) != {"responses"}:
        problems.append(f"$batch: top-level keys {sorted(answer)}")
    for item in answer.get("responses", []):
        extra = set(item) - {"id", "status", "headers", "body"}
        if extra or not {"id", "status"} <= set(item):
            problems.append(f"$batch item: keys {sorted(item)}")
        request = requests.get(item.get("id"))
        if request is None:
            problems.append(f"$batch item {item.get('id')!r} answers no request")
            continue
        url = "/" + request["url"].lstrip("/")
        problems += _answer(
            request["method"], url.split("?", 1)[0], item["status"], item.get("body")
        )
    return problems


# The SDK's parse is slow and the tests read the same messages again and again (every snapshot,
# every discovery, in every sandbox seeded alike), so what a body breaks is remembered. It
# depends only on the model and the JSON, and not on the text of the ids each seeding makes up
# anew: the models read these as plain strings (``get_str_value``), so any string passes alike
# (a value of another type is kept: it may fail). Annotations' values are not checked, but
# ``@odata.type``'s: it picks the model (fileAttachment, eventMessage...).
# A collection's items are checked one by one, as its model parses them (each by its item
# model's discriminator), so one changed message does not make the whole page new.
_STRING_IDS = frozenset({"id", "parentFolderId", "conversationId", "changeKey"})
_ITEMS: dict[Model, Model] = {
    UserCollectionResponse: User,
    MailFolderCollectionResponse: MailFolder,
    MessageCollectionResponse: Message,
    AttachmentCollectionResponse: Attachment,
    DeltaGetResponse: Message,
}
_CHECKED: dict[tuple[Model, bytes], list[tuple[str, str]]] = {}


def _against(model: Model, body: Any, what: str) -> list[str]:
    if not isinstance(body, dict):
        return [f"{what}: the body is not a JSON object"]
    items = body.get("value")
    if model not in _ITEMS or not isinstance(items, list):
        return [f"{what}: {problem} {path}" for problem, path in _remembered(model, body)]
    found = _remembered(model, {**body, "value": []})
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            found.append(("value the model cannot read at", f"/value/{i}"))
            continue
        found += [
            (problem, f"/value/{i}{path.rstrip('/')}")
            for problem, path in _remembered(_ITEMS[model], item)
        ]
    return [f"{what}: {problem} {path}" for problem, path in found]


def _remembered(model: Model, body: dict[str, Any]) -> list[tuple[str, str]]:
    """``_problems`` of the body, worked out once per model and body (ids aside)."""
    key = (model, hashlib.sha256(json.dumps(_without_ids(body)).encode()).digest())
    if key not in _CHECKED:
        _CHECKED[key] = _problems(model, body)
    return _CHECKED[key][:]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _key_part(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _key_part(key: str, value: Any) -> Any:
    if _annotation(key) and key != "@odata.type":  # the type picks the model that parses
        return "<annotation>"
    if key in _STRING_IDS and isinstance(value, str):
        return "<id>"
    return _without_ids(value)


def _problems(model: Model, body: dict[str, Any]) -> list[tuple[str, str]]:
    parsed = JsonParseNode(body).get_object_value(model)
    found = [("unknown property", p) for p in _unknown(parsed, "")]
    writer = JsonSerializationWriter()
    writer.write_object_value(None, parsed)
    written = json.loads(writer.get_serialized_content())
    found += [("value the model cannot read at", p) for p in _dropped(body, written, "")]
    return found


def _annotation(key: str) -> bool:
    return key.startswith("@odata.") or key == "@removed"


def _unknown(value: Any, at: str) -> list[str]:
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unknown(v, f"{at}/{i}")]
    if not isinstance(value, Parsable):
        return []
    found = [
        f"{at}/{key}"
        for key in (getattr(value, "additional_data", None) or {})
        if not _annotation(key)
    ]
    for name, child in vars(value).items():
        if name != "additional_data" and isinstance(child, Parsable | list):
            found += _unknown(child, f"{at}/{name}")
    return found


def _dropped(given: Any, written: Any, at: str) -> list[str]:
    """Where a non-null value of the answer did not survive the SDK's parse."""
    if isinstance(given, dict):
        if not isinstance(written, dict):
            return [at or "/"]
        return [
            p
            for key, value in given.items()
            if value is not None and not _annotation(key)
            for p in (
                _dropped(value, written[key], f"{at}/{key}") if key in written else [f"{at}/{key}"]
            )
        ]
    if isinstance(given, list):
        if not isinstance(written, list) or len(written) != len(given):
            return [at]
        return [
            p
            for i, (g, w) in enumerate(zip(given, written, strict=True))
            for p in _dropped(g, w, f"{at}/{i}")
        ]
    return []

"""Drive v3, Sheets v4 and Analytics v3 (user deletion) answers against the discovery documents
google-api-python-client ships (the same documents the client is built from): each route's
response schema, every
property known by name and of its declared type. Errors against Google's error model
(https://cloud.google.com/apis/design/errors#http_mapping and Drive's "Resolve errors" page:
``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import jsonschema

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
# The emulator serves Drive under /drive/v3/ and Sheets at the root (DESIGN.md); these are the
# discovery documents' servicePath prefixes as the emulator mounts them.
SERVICES = {
    "drive.v3.json": "/drive/v3/",
    "sheets.v4.json": "/",
    "analytics.v3.json": "/analytics/v3/",
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["reason", "message"],
                        "properties": {
                            "domain": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                            "location": {"type": "string"},
                            "locationType": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
                "details": {"type": "array"},
            },
        }
    },
}
# Routes that are not part of either API: the OAuth token endpoint, the batch endpoint
# (multipart: each part is checked by nothing here), the emulator's own control routes.
NOT_API = re.compile(r"^/(token|batch/|_emulator/)")


def _json_schema(node: Any) -> Any:
    """A discovery schema node as JSON Schema: ``$ref`` by name, unknown properties refused."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    out: dict[str, Any] = {}
    kind = node.get("type")
    if kind and kind != "any":
        out["type"] = kind
    if "properties" in node:
        out["properties"] = {k: _json_schema(v) for k, v in node["properties"].items()}
    if kind == "object":
        extra = node.get("additionalProperties")
        out["additionalProperties"] = _json_schema(extra) if extra is not None else False
    if "items" in node:
        out["items"] = _json_schema(node["items"])
    if "enum" in node:
        out["enum"] = node["enum"]
    return out


def _methods(resources: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in resources.values():
        yield from resource.get("methods", {}).values()
        yield from _methods(resource.get("resources", {}))


@cache
def _routes() -> list[tuple[str, re.Pattern[str], str, dict[str, Any] | None]]:
    """(HTTP method, path pattern, method id, response schema) for every method of both."""
    routes = []
    for name, prefix in SERVICES.items():
        document = json.loads((DOCUMENTS / name).read_text())
        definitions = {k: _json_schema(v) for k, v in document["schemas"].items()}
        for method in _methods(document["resources"]):
            template = prefix + (method.get("flatPath") or method["path"])
            # {+range} and {range} alike: one path segment, URL-encoded.
            pattern = "[^/]+?".join(map(re.escape, re.split(r"\{\+?\w+\}", template)))
            response = method.get("response")
            schema = (
                {"definitions": definitions, "$ref": f"#/definitions/{response['$ref']}"}
                if response
                else None
            )
            routes.append((method["httpMethod"], re.compile(f"^{pattern}$"), method["id"], schema))
    # A literal segment wins over a parameter: files/generateIds before files/{fileId}.
    routes.sort(key=lambda r: r[1].pattern.count("[^/]+?"))
    return routes


@cache
def _downloads() -> list[tuple[str, re.Pattern[str]]]:
    """(HTTP method, path pattern) of the methods whose answer may be the file's bytes
    (``supportsMediaDownload``: ``files.get`` with ``alt=media``, ``files.export``)."""
    found = []
    for name, prefix in SERVICES.items():
        document = json.loads((DOCUMENTS / name).read_text())
        for method in _methods(document["resources"]):
            if method.get("supportsMediaDownload"):
                template = prefix + (method.get("flatPath") or method["path"])
                pattern = "[^/]+?".join(map(re.escape, re.split(r"\{\+?\w+\}", template)))
                found.append((method["httpMethod"], re.compile(f"^{pattern}$")))
    return found


def downloads(method: str, path: str) -> bool:
    """Whether a successful answer to this request may be bytes of any type, not JSON."""
    return any(verb == method and pattern.match(path) for verb, pattern in _downloads())


def check(method: str, path: str, status: int, body: bytes) -> list[str]:
    """What in this answer the vendor's schema does not allow (empty: conforms)."""
    if NOT_API.match(path):
        return []
    if status >= 400:
        return _errors(ERROR, json.loads(body), "error")
    for verb, pattern, method_id, response in _routes():
        if verb == method and pattern.match(path):
            if response is None:
                return [f"{method_id} answers no body"] if body.strip() else []
            return _errors(response, json.loads(body), method_id)
    return [f"{method} {path}: no such method in the Drive v3 / Sheets v4 discovery documents"]


def _errors(schema: dict[str, Any], instance: Any, what: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{what}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
        for e in validator.iter_errors(instance)
    ]

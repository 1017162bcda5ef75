"""Jira answers: the error shape of the Jira Cloud REST reference ("Status codes and errors":
``{"errorMessages": [...], "errors": {...}}``, and Service Management's ``{"errorMessage",
"i18nErrorMessage"}`` for servicedeskapi routes). Service Management routes may answer either:
the platform's own refusals (throttling, authentication) are not documented per route there, so
which shape a JSM 429 carries is not known from the reference. Success bodies are not checked
here: the OpenAPI document Atlassian publishes ships in no package this project installs."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

PLATFORM_ERROR = {
    "type": "object",
    "properties": {
        "errorMessages": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "warningMessages": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "integer"},
    },
    "anyOf": [{"required": ["errorMessages"]}, {"required": ["errors"]}],
    "additionalProperties": False,
}
SERVICE_DESK_ERROR = {
    "type": "object",
    "properties": {
        "errorMessage": {"type": "string"},
        "i18nErrorMessage": {"type": "object"},
    },
    "required": ["errorMessage"],
    "additionalProperties": False,
}

# Routes that answer a file's own bytes, whatever its type: Get attachment content ("*/*" in
# the reference, with ``redirect=false``) and the attachment's ``content`` address it
# redirects to.
FILE_CONTENT = re.compile(
    r"^/(?:rest/api/[23]/attachment/content/[^/]+|secure/attachment/[^/]+/[^/]+)$"
)


def serves_file(method: str, path: str, status: int) -> bool:
    return method == "GET" and status == 200 and FILE_CONTENT.match(path) is not None


def check(method: str, path: str, status: int, body: bytes) -> list[str]:
    if status < 400 or path.startswith("/_emulator/") or not body.strip():
        return []
    schema: dict[str, Any] = (
        {"anyOf": [SERVICE_DESK_ERROR, PLATFORM_ERROR]}
        if path.startswith("/rest/servicedeskapi/")
        else PLATFORM_ERROR
    )
    return [
        f"{status} error: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(json.loads(body))
    ]

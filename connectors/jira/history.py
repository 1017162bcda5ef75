"""What an issue's change history still holds of the subject after an anonymising edit.

Jira keeps every edit in the issue's changelog, old and new values (``from``/``fromString``,
``to``/``toString`` of each item): an anonymised summary, description, reporter or list of
request participants stays readable there. Jira offers no operation to remove or edit history
entries (Cloud platform REST API v2, Issues: Get changelogs and Get changelogs by IDs only
read; Data Center has ``expand=changelog``, read-only too). What finishes it is deleting the
issue (its history goes with it), or a request to Atlassian support; the receipt says so.

Only counts and field names leave this module: never the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from connectors.jira.client import JiraClient
from connectors.jira.text import Person, mentions

_ID_SEPARATORS = re.compile(r"[\s,\[\]]+")
PAGE = 100  # Get changelogs: at most 100 entries a page
STEP = (
    "Jira offers no API to remove history: deleting the issue removes it (if the issue may "
    "go), otherwise ask Atlassian support to purge these history entries"
)


def entries(client: JiraClient, key: str) -> Iterator[dict[str, Any]]:
    """Every changelog entry of the issue: Cloud pages Get changelogs (``startAt``, ``total``,
    ``isLast``); Data Center has only ``expand=changelog``. A missing issue has none."""
    if not client.is_cloud:
        issue = client.get_json(
            "reading an issue's history",
            f"issue/{key}",
            {"expand": "changelog", "fields": "summary"},
            missing_ok=True,
        )
        yield from ((issue or {}).get("changelog") or {}).get("histories") or []
        return
    start = 0
    while True:
        page = client.get_json(
            "reading an issue's history",
            f"issue/{key}/changelog",
            {"startAt": start, "maxResults": PAGE},
            missing_ok=True,
        )
        values = list((page or {}).get("values") or [])
        yield from values
        start += len(values)
        if not values or page.get("isLast") is True or start >= page.get("total", start):
            return


def traces(client: JiraClient, key: str, person: Person) -> tuple[int, list[str]]:
    """(entries, field names) of the history that name the subject: their account ids as a
    value, or their addresses or mentions in a value's text."""
    found = 0
    fields: set[str] = set()
    for entry in entries(client, key):
        hit = False
        for item in entry.get("items") or []:
            values = [item.get(k) for k in ("from", "to")]
            # A multi-user field's value lists several ids (separators vary): split on them.
            ids = {v for raw in values if raw for v in _ID_SEPARATORS.split(str(raw)) if v}
            texts = [item.get(k) for k in ("fromString", "toString")]
            if ids & person.account_ids or any(mentions(person, t) for t in texts if t):
                hit = True
                fields.add(str(item.get("field") or "?"))
        found += hit
    return found, sorted(fields)


def remains(client: JiraClient, key: str, person: Person) -> str | None:
    """The receipt's line for what the issue's history keeps of the subject, or None."""
    found, fields = traces(client, key, person)
    if not found:
        return None
    return (
        f"the issue's change history keeps the subject's earlier values in {found} "
        f"entr{'y' if found == 1 else 'ies'} ({', '.join(fields)}): {STEP}"
    )

"""The coverage survey of a Jira site: projects and service desks the mapping does not list.

Every request in Jira has a reporter, so any project may hold personal data; a service desk
also has customers. The site's projects come from Get projects paginated
(``GET /rest/api/2/project/search``, ``startAt``/``maxResults``, at most 50 a page, followed
until ``isLast``; on Data Center from Get all projects), its desks from
``GET /rest/servicedeskapi/servicedesk``. For each unmapped project one page of a JQL search
counts its requests (up to ``SAMPLE_ISSUES``; "at least" when there are more); no field of an
issue is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.base import Finding
from connectors.jira.client import JiraClient
from connectors.jira.desks import SD_PAGE, sd_pages
from connectors.jira.mapping import JiraMapping
from connectors.jira.operations import jql_string

PROJECT_PAGE = 50  # Atlassian's cap on project/search (JRACLOUD-84803)
SAMPLE_ISSUES = 50


def projects(client: JiraClient) -> Iterator[dict[str, Any]]:
    """Every project the account can see. Cloud: page by page (a page without ``isLast`` is
    not taken as the last one unless it is empty). Data Center has no paged route: Get all
    projects (``GET /rest/api/2/project``) answers them in one list."""
    if not client.is_cloud:
        yield from client.get_json("listing projects", "project")
        return
    start = 0
    while True:
        page = client.get_json(
            "listing projects", "project/search", {"startAt": start, "maxResults": PROJECT_PAGE}
        )
        values = list(page.get("values") or [])
        yield from values
        if page.get("isLast") is True or not values:
            return
        start += len(values)


class JiraSurvey:
    def __init__(self, name: str, client: JiraClient, mapping: JiraMapping) -> None:
        self.name = name
        self.client = client
        self.mapping = mapping

    def findings(self) -> list[Finding]:
        mapped = set(self.mapping.projects)
        desks = {
            desk["projectKey"]: desk
            for desk in sd_pages(
                lambda start: self.client.get(
                    "listing service desks",
                    "/rest/servicedeskapi/servicedesk",
                    {"start": start, "limit": SD_PAGE},
                )
            )
        }
        found: list[Finding] = []
        seen: set[str] = set()
        for project in projects(self.client):
            key = project["key"]
            seen.add(key)
            if key not in mapped:
                found.append(self._finding(key, project.get("name") or key, desks.get(key)))
        for key, desk in sorted(desks.items()):
            # A desk whose project the listing did not show (no Browse Projects there).
            if key not in mapped and key not in seen:
                found.append(self._finding(key, desk.get("projectName") or key, desk))
        return found

    def _finding(self, key: str, name: str, desk: dict[str, Any] | None) -> Finding:
        what = "service_desk" if desk else "project"
        where = f"service desk {desk['id']} of project {key}" if desk else f"project {key}"
        return Finding(
            source=self.name,
            what=what,
            place=key,
            evidence=f"{where} ({name}) is not in the mapping's projects; {self._requests(key)}",
            snippet=f"projects: [{', '.join([*self.mapping.projects, key])}]",
        )

    def _requests(self, key: str) -> str:
        page = self.client.search_page(
            "counting a project's requests",
            f"project = {jql_string(key)} ORDER BY key ASC",
            ["key"],
            page_size=SAMPLE_ISSUES,
        )
        issues = len(page.get("issues") or [])
        more = bool(page.get("nextPageToken")) or int(page.get("total") or 0) > issues
        return f"holds {'at least ' if more else ''}{issues} request(s)"

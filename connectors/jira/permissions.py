"""What each right asks of dsrflow's Jira account, checked before a request runs (Get my
permissions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from connectors.jira.client import JiraClient, JiraRequestError
from connectors.jira.mapping import JiraMapping
from dsrflow.request import RequestType

# What each right asks of the account, as keys of Get my permissions (GET mypermissions).
# Every right discovers: issues (Browse projects), the service desks' customers (Service Project
# Agent) and users by address (the global Browse users and groups). Erasure edits and deletes
# issues, changes their reporter, edits or deletes other people's and the subject's comments, and
# removes customers from the service desk (Remove customers: the service desk's administrator);
# rectification and restriction (a label) edit issues. Deleting a customer's account needs site
# administration, which no permission key reports: README.md says so.
DISCOVERY_PERMISSIONS = ("BROWSE_PROJECTS", "SERVICEDESK_AGENT")
GLOBAL_PERMISSIONS = ("USER_PICKER",)
RIGHT_PERMISSIONS: dict[RequestType, tuple[str, ...]] = {
    RequestType.ERASURE: (
        "EDIT_ISSUES",
        "DELETE_ISSUES",
        "MODIFY_REPORTER",
        "EDIT_ALL_COMMENTS",
        "DELETE_ALL_COMMENTS",
        "ADMINISTER_PROJECTS",
    ),
    RequestType.RECTIFICATION: ("EDIT_ISSUES",),
    RequestType.RESTRICTION: ("EDIT_ISSUES",),
}


def lacking(client: JiraClient, project: str | None, keys: Sequence[str]) -> str | None:
    """The names of the permissions among ``keys`` the account does not hold ("" if it holds
    them all; None if the project is unknown)."""
    try:
        answer = client.my_permissions(project, ",".join(keys))
    except JiraRequestError as exc:
        return f"(its permissions cannot be read: HTTP {exc.status})"
    if answer is None:
        return None
    held = answer.get("permissions") or {}
    missing = [
        f"{(held.get(k) or {}).get('name') or k} ({k})"
        for k in keys
        if not (held.get(k) or {}).get("havePermission")
    ]
    return ", ".join(missing)


def preflight(
    client: JiraClient, mapping: JiraMapping, mapping_path: Path, right: RequestType
) -> list[str]:
    """The permissions ``right`` needs, per mapped project, from Get my permissions; a
    project the site does not have (or the account cannot see) is a mapping problem."""
    problems = []
    missing = lacking(client, None, GLOBAL_PERMISSIONS)
    if missing:
        problems.append(f"the account lacks the global permission {missing}")
    wanted = DISCOVERY_PERMISSIONS + RIGHT_PERMISSIONS.get(right, ())
    for index, project in enumerate(mapping.projects):
        missing = lacking(client, project, wanted)
        if missing is None:
            problems.append(
                f"mapping {mapping_path} projects.{index}: no project {project!r} "
                "on this site, or the account cannot browse it"
            )
        elif missing:
            problems.append(
                f"the account lacks {missing} in project {project}, which {right.value} needs"
            )
    return problems

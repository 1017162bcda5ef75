"""Jira Service Management's service desks and their customer lists (the ``servicedeskapi``
routes the ``jira`` client lacks), over ``JiraClient``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from connectors.jira.client import JiraClient

SD_PAGE = 50


def sd_pages(fetch: Callable[[int], dict[str, Any]]) -> Iterator[Any]:
    """The values of a Service Management paged list (``start``/``limit``): on until a page
    says ``isLastPage`` or comes back empty; a page without ``isLastPage`` is not taken as
    the last one, and the next start counts the values received, not ``limit``."""
    start = 0
    while True:
        page = fetch(start)
        values = list(page.get("values") or [])
        yield from values
        if page.get("isLastPage") is True or not values:
            return
        start += len(values)


def _all_servicedesks(client: JiraClient) -> list[dict[str, Any]]:
    return list(
        sd_pages(
            lambda start: client.get(
                "listing service desks",
                "/rest/servicedeskapi/servicedesk",
                {"start": start, "limit": SD_PAGE},
            )
        )
    )


def servicedesks(client: JiraClient, projects: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The service desks of the mapped ``projects``. The site's list is read once for a
    while (``connectors.jira.sitecache``); a mapped project the cached list lacks makes it
    read again, so a desk created since is never missed."""
    wanted = set(projects)
    listed = client.site.servicedesks
    if listed is None or not wanted <= {d.get("projectKey") for d in listed}:
        listed = _all_servicedesks(client)
        client.site.keep(servicedesks=listed)
    for desk in listed:
        if desk.get("projectKey") in wanted:
            yield desk


def customers_of(client: JiraClient, desk_id: str, query: str) -> Iterator[dict[str, Any]]:
    """The desk's customers that Jira's (fuzzy) ``query`` finds: the caller confirms."""
    return sd_pages(
        lambda start: client.get(
            "listing customers",
            f"/rest/servicedeskapi/servicedesk/{desk_id}/customer",
            {"query": query, "start": start, "limit": SD_PAGE},
            experimental=True,
        )
    )


def remove_customer(
    client: JiraClient, desk_id: str, account: str, confirm: Callable[[], bool]
) -> None:
    """Remove the account from the desk's customers; ``confirm``: whether it is gone."""
    client.delete(
        "removing a customer",
        f"/rest/servicedeskapi/servicedesk/{desk_id}/customer",
        {"accountIds": [account]},
        confirm=confirm,
    )

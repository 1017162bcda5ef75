"""Graph's 1,000-result cap on ``$search``: the emulator enforces it as Graph does (sorted by
sent date, no ``$skip``, no ``$filter`` beside it), and the connector cuts a capped search by
the date received until every part is under the cap, confirming every hit exactly."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from connectors.base import SourceUnavailable
from connectors.mail.discovery import received_within, split_day
from dsrflow.request import Subject

SUPPORT = "support@fjelltopp.example"
AUTH = {"Authorization": "Bearer t"}
START = dt.datetime(2021, 1, 1, 8, 0, tzinfo=dt.UTC)


def load(graph, count, *, per_day, sender="kari@example.com", start=START):
    """``count`` messages from ``sender`` to support, ``per_day`` a day from ``start``."""
    for n in range(count):
        when = (start + dt.timedelta(days=n // per_day, seconds=n % per_day)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        graph.store.add_message(
            SUPPORT,
            {
                "subject": f"case {n}",
                "from": {"emailAddress": {"address": sender}},
                "toRecipients": [{"emailAddress": {"address": SUPPORT}}],
                "receivedDateTime": when,
                "internetMessageId": f"<cap-{sender}-{n}@example.com>",
            },
        )


def search(graph, kql, **params):
    return httpx.get(
        f"{graph.url}/v1.0/users/{SUPPORT}/messages",
        params={"$search": f'"{kql}"', "$select": "id,receivedDateTime", **params},
        headers=AUTH,
        timeout=30,
    )


def test_emulator_caps_a_search_at_1000_and_refuses_skip(graph):
    load(graph, 1200, per_day=100)
    found, link = [], None
    answer = search(graph, "participants:kari@example.com", **{"$top": "1000"}).json()
    found += answer["value"]
    link = answer.get("@odata.nextLink")
    while link:
        answer = httpx.get(link, headers=AUTH, timeout=30).json()
        found += answer["value"]
        link = answer.get("@odata.nextLink")
    assert len(found) == 1000
    skipped = search(graph, "participants:kari@example.com", **{"$skip": "1000"})
    assert skipped.status_code == 400
    both = search(graph, "participants:kari@example.com", **{"$filter": "isRead eq true"})
    assert both.status_code == 400
    # A received range narrows the search, whole days.
    ranged = search(
        graph,
        "participants:kari@example.com AND received>=2021-01-03 AND received<=2021-01-04",
        **{"$top": "1000"},
    ).json()["value"]
    assert len(ranged) == 200
    assert {m["receivedDateTime"][:10] for m in ranged} == {"2021-01-03", "2021-01-04"}


def test_a_capped_search_is_split_by_date_and_every_hit_found(graph):
    load(graph, 2600, per_day=90)
    # Look-alikes in the same days: found by the fuzzy search, never the subject's.
    load(graph, 300, per_day=10, sender="kari@example.com.evil.org")
    connector = graph.connector(page_size=1000, matching__mentions=False)
    records = list(connector.discover(Subject.from_raw(["kari@example.com"])))
    ids = [r.native_id["internetMessageId"] for r in records]
    assert len(ids) == len(set(ids)) == 2600
    assert all(i.startswith("<cap-kari@example.com-") for i in ids)
    assert connector.stats.search_splits >= 2


def test_a_single_day_over_the_cap_fails_the_source(graph):
    load(graph, 1100, per_day=1100)
    connector = graph.connector(page_size=1000, matching__mentions=False)
    with pytest.raises(SourceUnavailable, match=r"within one day \(2021-01-01\)"):
        list(connector.discover(Subject.from_raw(["kari@example.com"])))


def test_split_day_keeps_both_halves_smaller():
    day = dt.date(2024, 5, 1)
    assert split_day([day] * 10, None, None) == day
    assert split_day([day] * 10, None, day) == day - dt.timedelta(days=1)
    assert split_day([day] * 10, day + dt.timedelta(days=3), None) == day + dt.timedelta(days=3)
    assert received_within('participants:"a@b.c"', day, None) == (
        '(participants:"a@b.c") AND received>=2024-05-01'
    )

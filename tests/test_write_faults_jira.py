"""Jira writes whose answer is lost after they were applied (issue 12 §1), over real HTTP.

The emulator's ``after_apply_*`` fault serves the first write of a kind (the issue, comment,
participant list or customer list changes) and then resets the connection, or answers 503.
The connector must read the target again instead of sending the write again: the end state
equals an uninterrupted run's on a second emulator seeded alike, the same writes reached Jira
(none twice), and the erasure is complete.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dsrflow.plan import Action
from sandbox import jira_seed
from tests.support.snapshots import jira_snapshot
from tests.test_jira_connector import (
    AL,
    TOKEN_ENV,
    Site,
    fixture_store,
    mapping_with,
    plan_erasure,
    start_site,
    subject,
)

# (what, path regex, method): the first write of each kind is the one whose answer is lost.
WRITES = [
    ("anonymising an issue", r"^/rest/api/2/issue/[^/]+$", "PUT"),
    ("deleting a comment", r"^/rest/api/2/issue/[^/]+/comment/[^/]+$", "DELETE"),
    ("anonymising a comment", r"^/rest/api/2/issue/[^/]+/comment/[^/]+$", "PUT"),
    ("removing request participants", r"/request/[^/]+/participant$", "DELETE"),
    ("removing a customer", r"/servicedesk/[^/]+/customer$", "DELETE"),
]


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Site]]:
    monkeypatch.setenv(TOKEN_ENV, jira_seed.SANDBOX_TOKEN)
    started = [start_site(fixture_store()) for _ in range(2)]
    try:
        yield started[0][1], started[1][1]
    finally:
        for server, _ in started:
            server.stop()


def writes(site: Site) -> dict[str, int]:
    stats = httpx.get(f"{site.url}/_emulator/stats").json()["requests"]
    return {k: v for k, v in stats.items() if k.split()[0] in ("PUT", "DELETE", "POST")}


def state(site: Site):
    """Everything Jira holds; ``updated`` is the time of each write, nothing else differs."""
    snapshot = jira_snapshot(site.source())
    for issue in snapshot["issues"].values():
        issue["fields"].pop("updated", None)
        for comment in issue.get("comments", []):
            comment.pop("updated", None)
    return snapshot


def erase_al(site: Site, mapping=None):
    # Retries allowed: the old client sent a write again after a reset, which shows here.
    connector = site.connector(mapping, max_retries=2)
    return connector.erase(
        plan_erasure(connector, list(connector.discover(subject(AL)))), subject(AL)
    )


@pytest.mark.parametrize(("what", "path", "method"), WRITES, ids=[w[0] for w in WRITES])
def test_a_reset_after_a_write_is_confirmed_by_reading_the_target(sites, what, path, method):
    faulty, reference = sites
    assert erase_al(reference).complete
    faulty.set_faults(after_apply_path=path, after_apply_method=method, after_apply_count=1)

    report = erase_al(faulty)

    assert faulty.faults.settings.after_apply_count == 0, f"no {what} happened"
    assert report.complete, report.results
    assert writes(faulty) == writes(reference)  # nothing sent twice
    assert state(faulty) == state(reference)


def test_a_503_after_an_issue_delete_is_confirmed_by_a_404(sites):
    faulty, reference = sites
    mapping = mapping_with(erasure={"mode": "delete_unshared"})
    assert erase_al(reference, mapping).complete
    faulty.set_faults(
        after_apply_path=r"^/rest/api/2/issue/[^/]+$",
        after_apply_method="DELETE",
        after_apply_count=1,
        after_apply_status=503,
    )
    report = erase_al(faulty, mapping)
    assert faulty.faults.settings.after_apply_count == 0
    assert report.complete, report.results
    assert "SUP-8" not in faulty.store.issues
    assert writes(faulty) == writes(reference)
    assert state(faulty) == state(reference)


def test_a_reset_after_a_rectification_is_confirmed_by_reading_the_fields(sites):
    faulty, _ = sites
    connector = faulty.connector(max_retries=2)
    records = [r for r in connector.discover(subject(AL)) if r.native_id == {"key": "SUP-8"}]
    action = plan_erasure(connector, records)[0].model_copy(
        update={"action": Action.RECTIFY, "fields": {"summary": "Private question (corrected)"}}
    )
    faulty.set_faults(after_apply_path=r"^/rest/api/2/issue/SUP-8$", after_apply_count=1)
    assert connector.rectify([action], subject(AL)).complete
    assert writes(faulty) == {"PUT issue/{key}": 1}
    assert faulty.store.issues["SUP-8"].fields["summary"] == "Private question (corrected)"

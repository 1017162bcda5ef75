"""Google Analytics, delete only: the connector on google-api-python-client's static analytics
v3 document files user deletion requests against the Google emulator over real HTTP; the
receipt line carries deletionRequestTime; the emulator's refusals (scope, property role, the
500-a-day quota, bad bodies) and retries of an idempotent upsert; the identifier kinds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.analytics.client import AnalyticsClient
from connectors.analytics.connector import AnalyticsConnector
from connectors.analytics.mapping import AnalyticsMapping
from connectors.analytics.settings import AnalyticsSource
from connectors.base import Capability, SourceUnavailable, capabilities
from dsrflow.identifiers import IdentifierError
from dsrflow.plan import Action, Outcome, PlannedAction
from dsrflow.request import Subject
from sandbox.drive_part import SERVICE_ACCOUNT, write_service_account
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.google.app import create_app
from sandbox.emulators.google.state import GoogleState
from sandbox.emulators.server import EmulatorServer

PROPERTY = "412345678"
CLIENT = "1197596843.1673515099"
USER = "customer-4711"
SUBJECT = Subject.from_raw(
    ["kari.nordmann@example.com"],
    analytics_client_ids=[f"GA1.1.{CLIENT}"],
    analytics_user_ids=[USER],
)
MAPPING = AnalyticsMapping.model_validate(
    {
        "kind": "analytics",
        "categories": {
            "user.behavior": {
                "purposes": ["website analytics"],
                "legal_basis": "consent",
                "consent_purpose": "analytics",
                "retention": "14 months in Google Analytics",
            }
        },
    }
)


@pytest.fixture
def google() -> Iterator[tuple[str, GoogleState, Faults]]:
    state, faults = GoogleState(), Faults()
    with EmulatorServer(create_app(state, faults), name="google") as url:
        yield url, state, faults


def connector(
    google: tuple[str, GoogleState, Faults], tmp_path: Path, sleeps: list[float] | None = None
) -> AnalyticsConnector:
    url, state, _ = google
    key = write_service_account(state, url, tmp_path / "sa.json")
    state.analytics.editors[PROPERTY] = {SERVICE_ACCOUNT}
    source = AnalyticsSource.model_validate(
        {
            "kind": "analytics",
            "mapping": str(tmp_path / "analytics.yaml"),
            "property_id": PROPERTY,
            "credentials_file": str(key),
            "api_url": url,
            "max_retries": 2,
        }
    )
    waits = sleeps if sleeps is not None else []
    return AnalyticsConnector(
        "analytics", MAPPING, source, AnalyticsClient("analytics", source, sleep=waits.append)
    )


def plan() -> list[PlannedAction]:
    return MAPPING.plan_deletions("analytics", SUBJECT)


def test_it_only_erases_one_request_per_analytics_id(google: Any, tmp_path: Path) -> None:
    with connector(google, tmp_path) as analytics:
        assert capabilities(analytics) == {Capability.ERASE}
        actions = plan()
        assert {(a.native_id["type"], a.native_id["userId"]) for a in actions} == {
            ("CLIENT_ID", CLIENT),
            ("USER_ID", USER),
        }
        report = analytics.erase(actions, SUBJECT)
    assert [r.outcome for r in report.results] == [Outcome.DONE, Outcome.DONE]
    for result in report.results:
        assert "deletionRequestTime 20" in (result.detail or "")
        assert result.remains and "72 hours" in result.remains
    _, state, _ = google
    assert set(state.analytics.deletions) == {
        (PROPERTY, "CLIENT_ID", CLIENT),
        (PROPERTY, "USER_ID", USER),
    }


def test_an_id_not_the_subjects_is_never_sent(google: Any, tmp_path: Path) -> None:
    stranger = plan()[0].model_copy(
        update={"native_id": {"type": "CLIENT_ID", "userId": "1.2"}, "record_id": "x"}
    )
    keep = stranger.model_copy(update={"action": Action.KEEP, "reason": "held", "record_id": "y"})
    with connector(google, tmp_path) as analytics:
        report = analytics.erase([stranger, keep], SUBJECT)
    assert [r.outcome for r in report.results] == [Outcome.FAILED, Outcome.SKIPPED]
    assert google[1].analytics.deletions == {}


def test_the_daily_quota_fails_the_action_and_is_not_retried(google: Any, tmp_path: Path) -> None:
    google[1].analytics.daily_quota = 1
    sleeps: list[float] = []
    with connector(google, tmp_path, sleeps) as analytics:
        report = analytics.erase(plan(), SUBJECT)
    assert [r.outcome for r in report.results] == [Outcome.DONE, Outcome.FAILED]
    assert "500" in (report.results[1].detail or "") and not sleeps


def test_a_property_without_the_editor_role_is_refused(google: Any, tmp_path: Path) -> None:
    with connector(google, tmp_path) as analytics:
        google[1].analytics.editors[PROPERTY] = set()
        report = analytics.erase(plan(), SUBJECT)
    assert {r.outcome for r in report.results} == {Outcome.FAILED}
    assert "HTTP 403 insufficientPermissions" in (report.results[0].detail or "")


def test_a_lost_or_failed_upsert_is_sent_again_because_it_is_idempotent(
    google: Any, tmp_path: Path
) -> None:
    _, state, faults = google
    faults.settings = FaultSettings(
        after_apply_path="userDeletion", after_apply_count=1, after_apply_status=503
    )
    with connector(google, tmp_path) as analytics:
        report = analytics.erase(plan()[:1], SUBJECT)
    assert report.results[0].outcome == Outcome.DONE
    assert len(state.analytics.deletions) == 1


def test_a_failing_api_fails_the_source_loudly(google: Any, tmp_path: Path) -> None:
    google[2].settings = FaultSettings(fail_path="userDeletion", fail_status=500, fail_count=9)
    sleeps: list[float] = []
    with (
        connector(google, tmp_path, sleeps) as analytics,
        pytest.raises(SourceUnavailable, match=r"HTTP 500 .* after 3 attempt"),
    ):
        analytics.erase(plan(), SUBJECT)
    assert len(sleeps) == 2


def test_the_emulator_refuses_bad_bodies_and_other_scopes(google: Any, tmp_path: Path) -> None:
    url, state, _ = google
    token = state.issue_token(SERVICE_ACCOUNT, frozenset({"https://www.googleapis.com/auth/drive"}))
    path = f"{url}/analytics/v3/userDeletion/userDeletionRequests:upsert"
    body = {"id": {"type": "CLIENT_ID", "userId": CLIENT}, "propertyId": PROPERTY}
    wrong_scope = httpx.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert wrong_scope.status_code == 403
    assert wrong_scope.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    token = state.issue_token(
        SERVICE_ACCOUNT, frozenset({"https://www.googleapis.com/auth/analytics.user.deletion"})
    )
    state.analytics.editors[PROPERTY] = {SERVICE_ACCOUNT}
    headers = {"Authorization": f"Bearer {token}"}
    for bad in (
        {**body, "webPropertyId": "UA-1-1"},  # two targets
        {"id": {"type": "EMAIL", "userId": "x"}, "propertyId": PROPERTY},
        {"id": {"type": "CLIENT_ID"}, "propertyId": PROPERTY},
        {**body, "deletionRequestTimes": "x"},
    ):
        answer = httpx.post(path, json=bad, headers=headers)
        assert answer.status_code == 400, bad
    assert httpx.post(path, json=body).status_code == 401
    assert httpx.post(path, json=body, headers=headers).status_code == 200


def test_analytics_ids_are_validated_and_exact() -> None:
    subject = Subject.from_raw(["a@example.com"], analytics_client_ids=[f" GA1.1.{CLIENT} "])
    assert [i.value for i in subject.of_kind("analytics_client_id")] == [CLIENT]
    for bad in ("12345", "GA1.1.abc.def", "1.2.3", ""):
        with pytest.raises(IdentifierError):
            Subject.from_raw(["a@example.com"], analytics_client_ids=[bad])
    with pytest.raises(IdentifierError):
        Subject.from_raw(["a@example.com"], analytics_user_ids=["has space"])
    assert "analytics_client_id:***99" in subject.masked()


def test_the_shipped_mapping_loads_and_plans_nothing_without_analytics_ids() -> None:
    from dsrflow.mapping import load_mapping

    mapping = load_mapping(Path(__file__).resolve().parents[1] / "mappings" / "analytics.yaml")
    assert isinstance(mapping, AnalyticsMapping)
    assert mapping.plan_deletions("analytics", Subject.from_raw(["a@example.com"])) == []
    assert "pseudonymous" in mapping.access_note

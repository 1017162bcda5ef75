"""What Drive does that a connector must cope with, emulated and met by the real SDK:
sorting refused on full-text queries, quota errors as 403, shared drives and nested folders,
and what the delegated user may see."""

from __future__ import annotations

import httpx
import pytest
import yaml
from googleapiclient.errors import HttpError

from dsrflow.mapping import parse_mapping
from tests.test_drive_connector import connector, kari, sandbox  # noqa: F401 - fixture
from tests.test_google_emulator import SHEET, google  # noqa: F401 - fixture

KARI = "kari.nordmann@example.com"


# -- full text and orderBy ------------------------------------------------------------------------


def test_drive_refuses_to_sort_a_full_text_query(google):  # noqa: F811
    _, _, _, drive, _, _ = google
    with pytest.raises(HttpError) as caught:
        drive.files().list(q="fullText contains 'a@example.com'", orderBy="name").execute()
    assert caught.value.status_code == 403
    detail = caught.value.error_details[0]
    assert (detail["reason"], detail["location"]) == ("forbidden", "orderBy")
    assert "Sorting is not supported for queries with fullText terms" in caught.value.reason
    # Without orderBy, or sorted without fullText, Drive answers.
    found = drive.files().list(q="fullText contains 'a@example.com'").execute()
    assert {f["id"] for f in found["files"]} == {f"ss-{n}" for n in range(5)}
    drive.files().list(q=f"mimeType = '{SHEET}'", orderBy="name").execute()


def test_full_text_search_sends_no_order(sandbox, tmp_path):  # noqa: F811
    data = yaml.safe_load(sandbox.mapping.read_text())
    data["folders"] = [{"name": "Analytics"}]
    data["spreadsheets"] = []
    data["full_text_search"] = True
    mapping = parse_mapping(yaml.safe_dump(data), tmp_path / "m.yaml")
    found = {r.location for r in connector(sandbox, mapping).discover(kari())}
    assert "Meetup 2023 guest list / Guests" in found  # only full-text search finds it


# -- quota errors as 403 --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["userRateLimitExceeded", "rateLimitExceeded"])
def test_drive_quota_403_has_drives_error_shape(google, reason):  # noqa: F811
    url, _, _, drive, _, _ = google
    faults = {"fail_path": "/drive/v3/files$", "fail_status": 403, "fail_count": 1}
    httpx.post(f"{url}/_emulator/faults", json={**faults, "fail_code": reason})
    raw = httpx.get(f"{url}/drive/v3/files")
    assert raw.status_code == 403
    error = raw.json()["error"]
    assert error["code"] == 403
    assert [(e["domain"], e["reason"]) for e in error["errors"]] == [("usageLimits", reason)]
    drive.files().list().execute()  # healed


@pytest.mark.parametrize(
    "path",
    [
        "/drive/v3/files$",  # the folder listing
        "/drive/v3/files/ss-leads-loose",  # a files.get inside /batch/drive/v3
    ],
)
def test_drive_quota_403_is_backed_off_and_read_again(sandbox, path):  # noqa: F811
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={
            "fail_path": path,
            "fail_status": 403,
            "fail_count": 2,
            "fail_code": "userRateLimitExceeded",
        },
    )
    drive = connector(sandbox, max_retries=3)
    records = list(drive.discover(kari()))
    assert len(records) == 8  # the same answer as without the refusals
    assert drive.client.stats.retries == 2
    assert len(drive.sleeps) == 2


def test_a_write_refused_for_quota_is_not_sent_again(sandbox):  # noqa: F811
    drive = connector(sandbox, max_retries=3)
    records = [r for r in drive.discover(kari()) if r.location.startswith("Usage export")]
    plan = drive.plan_erasure(records)
    httpx.post(
        f"{sandbox.api_url}/_emulator/faults",
        json={
            "fail_path": ":batchUpdate$",
            "fail_status": 403,
            "fail_count": 5,
            "fail_code": "rateLimitExceeded",
        },
    )
    httpx.post(f"{sandbox.api_url}/_emulator/reset-stats")
    report = drive.erase(plan)
    assert {r.outcome.value for r in report.results} == {"failed"}
    assert all("403 rateLimitExceeded" in (r.detail or "") for r in report.results)
    stats = httpx.get(f"{sandbox.api_url}/_emulator/stats").json()["requests"]
    assert stats["spreadsheets.batchUpdate"] == 1

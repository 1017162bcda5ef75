"""What Drive does that a connector must cope with, emulated and met by the real SDK:
sorting refused on full-text queries, quota errors as 403, shared drives and nested folders,
and what the delegated user may see."""

from __future__ import annotations

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

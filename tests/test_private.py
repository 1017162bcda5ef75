"""The scrubbing of what Prefect keeps (flows/private.py): personal data goes, links stay."""

from __future__ import annotations

import pytest

from flows.private import scrub


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("failed for kari.nordmann@example.com", "failed for <address>"),
        ("q=participants%3Akari%40example.com", "q=<address>"),  # wider on purpose
        ("call +47 912 34 567 now", "call <phone> now"),
        ("phone 22.33.44.55", "phone <phone>"),
        ("request DSR-2026-70000005 failed", "request DSR-2026-70000005 failed"),
        (
            "View at http://127.0.0.1:8052/runs/flow-run/7f67d2a7",
            "View at http://127.0.0.1:8052/runs/flow-run/7f67d2a7",
        ),
    ],
)
def test_scrub(text: str, kept: str) -> None:
    assert scrub(text) == kept

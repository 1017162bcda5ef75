"""The connector's JSON ``$batch`` bodies: item URLs relative to Graph's version root and
``dependsOn`` spelt as Graph spells it (msgraph-core keeps absolute URLs and writes
``depends_on``: msgraph-sdk-python#1015, msgraph-sdk-python-core#1116)."""

from __future__ import annotations

import pytest

from connectors.mail.client import batch_body

SUPPORT = "support@fjelltopp.example"


def test_items_are_relative_to_the_version_root_even_from_an_absolute_link(graph):
    connector = graph.connector()
    messages = connector.graph.client.users.by_user_id(SUPPORT).messages
    # A builder made from an absolute URL (as from an @odata.nextLink) carries that URL.
    absolute = messages.with_url(f"{graph.url}/v1.0/users/{SUPPORT}/messages?$top=1")
    built = messages.by_message_id("sup-sal").to_get_request_information()
    requests = [absolute.to_get_request_information(), built]
    body = batch_body(requests, connector.graph.client.request_adapter.base_url)
    assert [item["url"] for item in body["requests"]] == [
        f"/users/{SUPPORT}/messages?$top=1",
        "/users/support%40fjelltopp.example/messages/sup-sal",
    ]
    assert all("depends_on" not in item for item in body["requests"])
    # Through the emulator, which refuses absolute and versioned item URLs as Graph does.
    answers = connector.graph.run(connector.graph.batch(requests, "test"))
    assert [a.status for a in answers] == [200, 200]
    assert len(answers[0].body["value"]) == 1


def test_a_url_outside_the_version_root_is_refused_before_sending(graph):
    connector = graph.connector()
    users = connector.graph.client.users
    foreign = users.with_url("https://elsewhere.example/beta/users").to_get_request_information()
    with pytest.raises(ValueError, match="version root"):
        batch_body([foreign], connector.graph.client.request_adapter.base_url)

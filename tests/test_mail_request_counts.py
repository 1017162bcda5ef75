"""How many requests one subject's mail discovery makes on the sandbox tenant: every mailbox's
first search page in one ``$batch``, folder names only for mailboxes with hits (main made one
search request per mailbox: 6 here)."""

from __future__ import annotations

from dsrflow.request import Subject


def test_one_subject_costs_the_users_list_two_batches_and_the_attachment_reads(graph):
    graph.reset_stats()
    connector = graph.connector()
    records = list(connector.discover(Subject.from_raw(["al@example.com"])))
    assert records  # the subject has mail in two of the three mailboxes
    routes = graph.requests()
    attachments = connector.stats.attachment_requests
    assert attachments == routes.get(
        "GET /users/(?P<user>[^/]+)/messages/(?P<message>[^/]+)/attachments", 0
    )
    # The users list, the first search pages of all 3 mailboxes, the folder names of the 2
    # with hits: 3 requests whatever the number of mailboxes up to 20.
    assert routes["GET /users"] == 1
    assert routes["POST /$batch"] == 2
    assert sum(routes.values()) - attachments == 3
    assert connector.stats.searches == 3  # still one search per mailbox, as Graph counts them

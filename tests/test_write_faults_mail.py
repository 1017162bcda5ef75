"""Mail erasure whose ``$batch`` answer is lost after the deletions were applied (issue 12 §1).

The Graph emulator's ``after_apply_*`` fault serves the erasure's ``$batch`` (the messages are
deleted or moved) and then resets the connection, or answers 503. The connector must not send
the batch again blindly but read each message again: a 404 ErrorItemNotFound for that exact
item is a confirmed absence. The end state must equal an uninterrupted run's on a second
emulator seeded alike, and the report must say DONE (this run did it), not "already done".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.mail.settings import MailSource
from dsrflow.plan import Outcome
from sandbox.emulators.faults import FaultSettings
from tests.support.graph import running_graph
from tests.support.snapshots import mail_snapshot
from tests.test_mail_connector import AL, discover, plan_for

HELD = "sup-contract"  # under the Contracts hold: kept, reported SKIPPED
# Only the erasure's $batch: its items are DELETE or POST …/permanentDelete; lookups are GETs.
LOSE_ERASE_BATCH = {
    "after_apply_path": r"^/v1\.0/\$batch$",
    "after_apply_body": r'"method":\s*"(DELETE|POST)"',
    "after_apply_count": 1,
}


@pytest.fixture(scope="module")
def servers():
    with running_graph("graph-faulty") as faulty, running_graph("graph-reference") as reference:
        yield faulty, reference


@pytest.fixture
def graphs(servers):
    faulty, reference = servers
    with faulty.fresh() as one, reference.fresh() as two:
        yield one, two


def state(graph):
    """Every mailbox; a moved message's etag, change key and modification time are new at
    each move, and an attachment's modification time is the time of seeding (two emulators
    seeded a moment apart may straddle a second): nothing else may differ."""
    source = MailSource(kind="mail", mapping=Path("mail.yaml"), base_url=f"{graph.url}/v1.0")
    snapshot = mail_snapshot(source)
    for box in snapshot.values():
        for message in box.values():
            message.pop("@odata.etag", None)
            message.pop("changeKey", None)
            message.pop("lastModifiedDateTime", None)
            for attachment in message.get("attachments") or []:
                attachment.pop("lastModifiedDateTime", None)
    return snapshot


def erase_al(graph, **mapping):
    connector = graph.connector(matching__mentions=False, **mapping)
    report = connector.erase(plan_for(discover(connector, "al@example.com")), AL)
    return connector, report


def outcomes(report):
    return {
        r.record_id.split("<")[1].split("@")[0]: (r.outcome, r.detail or "") for r in report.results
    }


@pytest.mark.parametrize("mode", ["permanentDelete", "delete"])
def test_a_reset_after_the_erasure_batch_is_confirmed_by_reading_each_message(graphs, mode):
    faulty, reference = graphs
    erase_al(reference, erasure__mode=mode)
    faulty.faults.settings = FaultSettings(**LOSE_ERASE_BATCH)

    connector, report = erase_al(faulty, erasure__mode=mode)

    assert state(faulty) == state(reference)  # the same messages went; nobody else's moved
    assert connector.stats.erase_batches == 1  # the batch was not sent again
    found = outcomes(report)
    assert found.pop(HELD)[0] == Outcome.SKIPPED
    assert {outcome for outcome, _ in found.values()} == {Outcome.DONE}


def test_a_503_after_the_erasure_batch_applied_is_confirmed_not_resent(graphs):
    faulty, reference = graphs
    erase_al(reference)
    faulty.faults.settings = FaultSettings(**LOSE_ERASE_BATCH, after_apply_status=503)

    connector, report = erase_al(faulty)

    assert state(faulty) == state(reference)
    assert connector.stats.erase_batches == 1
    found = outcomes(report)
    found.pop(HELD)
    assert {outcome for outcome, _ in found.values()} == {Outcome.DONE}


def test_a_batch_refused_before_it_ran_is_sent_again(graphs):
    """A 503 for the whole $batch that did not run: every message is still there, so the
    batch goes again, and the end is as if nothing had failed."""
    faulty, reference = graphs
    erase_al(reference)
    connector = faulty.connector(matching__mentions=False)
    actions = plan_for(discover(connector, "al@example.com"))
    # Fail only the next $batch (the erasure's): no lookups are needed after discovery.
    faulty.faults.settings = FaultSettings(
        fail_path=r"^/v1\.0/\$batch$", fail_status=502, fail_count=1
    )
    report = connector.erase(actions, AL)

    assert state(faulty) == state(reference)
    assert connector.stats.erase_batches == 2
    found = outcomes(report)
    found.pop(HELD)
    assert {outcome for outcome, _ in found.values()} == {Outcome.DONE}

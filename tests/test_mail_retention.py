"""The mail retention sweep: the real msgraph-sdk over HTTP against the Graph emulator."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from connectors.base import SourceUnavailable, Sweeping
from connectors.mail.mapping import MailMapping
from dsrflow.mapping import MappingError, parse_mapping
from dsrflow.request import Subject
from dsrflow.run_settings import run_settings
from sandbox.emulators.faults import FaultSettings
from tests.support.graph import BASE_MAPPING, Graph, running_graph

SUPPORT = "support@fjelltopp.example"
SALES = "sales@fjelltopp.example"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
# mappings/mail.yaml: every folder 3.5 years; Contracts 3.5 years too (its legal hold's term).
CUTOFF = "2023-05-22T12:00:00Z"
OLD = "2021-02-01T08:00:00Z"  # well past the cutoff
YOUNG = "2024-01-10T08:00:00Z"  # inside the 3.5 years


class RetentionGraph(Graph):
    """The emulator, with messages of a chosen age added to the fixture tenant."""

    def add(self, mailbox: str, name: str, received: str, folder: str = "Inbox", **extra) -> None:
        self.store.add_message(
            mailbox,
            {
                "subject": name,
                "internetMessageId": f"<{name}@example.com>",
                "receivedDateTime": received,
                "from": {"emailAddress": {"address": extra.pop("sender", "old@example.com")}},
                "toRecipients": [{"emailAddress": {"address": mailbox}}],
                "folder": folder,
                **extra,
            },
        )

    def names(self) -> set[str]:
        """Subjects of every message in the tenant, with the folder they are in."""
        out = set()
        for box, stored in self.store.all_messages():
            folder = box.folders[stored.resource["parentFolderId"]].display_name
            out.add((stored.resource["subject"], folder))
        return out


@pytest.fixture(scope="module")
def server():
    with running_graph("graph-retention", RetentionGraph) as graph:
        yield graph


@pytest.fixture
def graph(server):
    """The fixture tenant plus old and young messages around the 3.5-year cutoff."""
    with server.fresh() as fresh:
        with fresh.store.lock:
            for n in range(7):
                fresh.add(SUPPORT, f"old-inbox-{n}", OLD)
            fresh.add(SUPPORT, "young-inbox", YOUNG)
            fresh.add(SUPPORT, "old-sent", OLD, folder="Sent Items")
            fresh.add(SALES, "old-nested", OLD, folder="Inbox/Projects")
            fresh.add(SALES, "old-contract", OLD, folder="Contracts")
            fresh.add(SALES, "young-contract", "2023-06-01T08:00:00Z", folder="Contracts")
            fresh.add(SALES, "old-of-kari", OLD, sender="kari@example.com")
            # Newer than the other old ones: listed (newest first) ahead of them, on a page of
            # their own with page_size=2, so the sweep must page past them with $skip.
            for n, day in ((2, "2022-01-02"), (3, "2022-01-01")):
                when = f"{day}T08:00:00Z"
                fresh.add(SUPPORT, f"old-of-kari-{n}", when, sender="kari@example.com")
        yield fresh


OLD_ONES = {
    *[(f"old-inbox-{n}", "Inbox") for n in range(7)],
    ("old-sent", "Sent Items"),
    ("old-nested", "Projects"),
    ("old-contract", "Contracts"),
    ("old-of-kari", "Inbox"),
    ("old-of-kari-2", "Inbox"),
    ("old-of-kari-3", "Inbox"),
}
KARI = {("old-of-kari", "Inbox"), ("old-of-kari-2", "Inbox"), ("old-of-kari-3", "Inbox")}


def by_table(results):
    return {r.table: r for r in results}


def test_the_mapping_declares_the_rules():
    mapping = MailMapping.model_validate(BASE_MAPPING)
    assert [r.folders for r in mapping.retention] == [None]
    assert mapping.retention[0].max_age.years == 3 and mapping.retention[0].max_age.months == 6
    assert mapping.retention_rule_for("Contracts") is mapping.retention[0]


def test_old_mail_goes_young_mail_and_the_fixture_stay(graph):
    before = graph.names()
    connector = graph.connector(page_size=3)
    assert isinstance(connector, Sweeping)
    results = connector.sweep(NOW)
    assert graph.names() == before - OLD_ONES
    # Every fixture message is from 2025-2026: all of them stay.
    assert graph.store.count() == 14 + 2
    tables = by_table(results)
    assert tables["Inbox"].rows == 10  # 9 in support's Inbox, 1 in sales'
    assert tables["Inbox"].cutoff == CUTOFF
    assert tables["Inbox"].rule == "permanentDelete after 3y6m (receivedDateTime)"
    assert tables["Sent Items"].rows == 1
    assert tables["Projects"].rows == 1  # a child folder: found through childFolders
    assert tables["Contracts"].rows == 1
    assert tables["Contracts"].notes == [
        "legal hold: correspondence about agreements (Bookkeeping Act §13, 3.5 years)"
    ]
    assert sum(r.rows for r in results) == len(OLD_ONES)
    assert all(r.protected == 0 and not r.dry_run for r in results)


def test_a_rerun_is_a_no_op(graph):
    graph.connector().sweep(NOW)
    after = graph.names()
    again = graph.connector(page_size=2).sweep(NOW)
    assert sum(r.rows for r in again) == 0
    assert graph.names() == after


def test_dry_run_counts_and_changes_nothing(graph):
    before = graph.names()
    results = graph.connector(page_size=2).sweep(NOW, dry_run=True)
    assert graph.names() == before
    assert sum(r.rows for r in results) == len(OLD_ONES)
    assert by_table(results)["Inbox"].rows == 10
    assert all(r.dry_run for r in results)


def test_restricted_subjects_mail_stays_and_is_counted(graph):
    connector = graph.connector(page_size=2)
    protected = list(connector.discover(Subject.from_raw(["kari@example.com"])))
    assert len(protected) == 3
    results = connector.sweep(NOW, protected=protected)
    inbox = by_table(results)["Inbox"]
    assert inbox.protected == 3
    assert inbox.rows == 7
    assert graph.names() & OLD_ONES == KARI
    # Next run: the protected messages are still counted, nothing else goes.
    again = by_table(connector.sweep(NOW, protected=protected))["Inbox"]
    assert (again.rows, again.protected) == (0, 3)


def test_rules_by_folder_and_folders_outside_every_rule(graph):
    rules = [
        {"folders": ["Sent Items"], "max_age": {"years": 1}},
        {"folders": ["projects"], "max_age": {"years": 10}},  # case-insensitive
    ]
    results = graph.connector(retention=rules).sweep(NOW)
    assert {(r.table, r.rows) for r in results} == {("Sent Items", 1), ("Projects", 0)}
    assert by_table(results)["Sent Items"].cutoff == "2025-11-22T12:00:00Z"
    names = graph.names()
    assert ("old-sent", "Sent Items") not in names
    assert {("old-nested", "Projects"), ("old-inbox-0", "Inbox")} <= names


def test_a_legal_hold_longer_than_the_rule_keeps_the_folder(graph):
    rules = [{"max_age": {"years": 1}, "counts_from": "receivedDateTime"}]
    results = graph.connector(retention=rules).sweep(NOW)
    contracts = by_table(results)["Contracts"]
    # The hold (3.5 years) is longer than the rule: only the old contract goes.
    assert contracts.cutoff == CUTOFF
    assert contracts.rows == 1
    assert ("young-contract", "Contracts") in graph.names()
    # Young inbox mail (2024) is past one year: it goes now.
    assert ("young-inbox", "Inbox") not in graph.names()


def test_delete_mode_moves_to_deleted_items_and_the_next_sweep_empties_them(graph):
    connector = graph.connector(erasure={"mode": "delete"})
    first = connector.sweep(NOW)
    assert sum(r.rows for r in first) == len(OLD_ONES)
    moved = {n for n, f in graph.names() if f == "Deleted Items"}
    assert moved == {n for n, _ in OLD_ONES}
    second = by_table(graph.connector(erasure={"mode": "delete"}).sweep(NOW))
    assert second["Deleted Items"].rows == len(OLD_ONES)
    assert not {n for n, f in graph.names() if f == "Deleted Items"}


def test_no_rules_no_sweep(graph):
    assert graph.connector(retention=[]).sweep(NOW) == []


def test_a_failing_mailbox_makes_the_source_unavailable(graph):
    graph.faults.settings = FaultSettings(
        fail_path=f"/users/{SALES}/mailFolders/.*/messages", fail_status=503, fail_count=100
    )
    with pytest.raises(SourceUnavailable, match=f"'mail'.*mailbox {SALES}: .*HTTP 503"):
        graph.connector(max_retries=1).sweep(NOW)


def test_throttled_deletions_are_retried_and_the_sweep_completes(graph):
    graph.faults.settings = FaultSettings(throttle_every=4, retry_after_s=0)
    results = graph.connector(page_size=3).sweep(NOW)
    graph.faults.settings = FaultSettings()
    assert sum(r.rows for r in results) == len(OLD_ONES)
    assert not OLD_ONES & graph.names()


def test_deletions_refused_for_good_fail_the_source(graph):
    graph.faults.settings = FaultSettings(throttle_every=1, retry_after_s=0)
    with pytest.raises(SourceUnavailable, match="'mail'"):
        graph.connector(max_retries=1).sweep(NOW)


def test_mapping_refuses_overlapping_rules():
    bad = copy.deepcopy(BASE_MAPPING)
    bad["retention"] = [
        {"folders": ["Inbox"], "max_age": {"years": 1}},
        {"folders": ["inbox"], "max_age": {"years": 2}},
    ]
    with pytest.raises(MappingError, match="already named by rule 0"):
        parse_mapping(yaml.safe_dump(bad), Path("mail.yaml"))
    bad["retention"] = [{"max_age": {"years": 1}}, {"max_age": {"years": 2}}]
    with pytest.raises(MappingError, match="only one rule may leave out folders"):
        parse_mapping(yaml.safe_dump(bad), Path("mail.yaml"))
    bad["retention"] = [{"max_age": {"years": 1}, "counts_from": "createdDateTime"}]
    with pytest.raises(MappingError, match="counts_from"):
        parse_mapping(yaml.safe_dump(bad), Path("mail.yaml"))


# -- the retention-sweep flow, with mail among the sources ---------------------------------------


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_sweep_flow_sweeps_mail_and_spares_restricted_subjects(
    graph, tmp_path, sandbox_sqlite_url
):
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from flows.retention import retention_sweep
    from sandbox.mail_part import mail_source
    from sandbox.runtime import onprem_source, write_config

    config = tmp_path / "dsrflow.yaml"
    write_config(
        config, onprem_source(sandbox_sqlite_url) | mail_source(graph.url), tmp_path / "out"
    )
    ledger = Ledger(load_config(config).ledger_url)
    ledger.add_restriction(Subject.from_raw(["kari@example.com"]), "DSR-2026-0600", "test")
    ledger.close()
    before = graph.names()
    with run_settings(config):
        dry = retention_sweep(dry_run=True, as_of=NOW)
    assert graph.names() == before
    mail_rows = {r["table"]: r for r in dry.results if r["source"] == "mail"}
    assert mail_rows["Inbox"]["rows"] == 7 and mail_rows["Inbox"]["protected"] == 3
    with run_settings(config):
        summary = retention_sweep(as_of=NOW)
    assert "mail" not in summary.skipped_sources
    mail_rows = {r["table"]: r for r in summary.results if r["source"] == "mail"}
    assert sum(r["rows"] for r in mail_rows.values()) == len(OLD_ONES) - len(KARI)
    assert mail_rows["Inbox"]["protected"] == 3
    assert mail_rows["Contracts"]["cutoff"] == CUTOFF
    assert graph.names() == (before - OLD_ONES) | KARI
    ledger = Ledger(load_config(config).ledger_url)
    sweep = [e for e in ledger.entries() if e.event == "retention_sweep"][-1]
    ledger.close()
    assert sweep.details["rows"]["mail.Inbox"] == 7


def test_emulator_lists_child_folders_and_pages_messages_with_skip(graph):
    import httpx

    headers = {"Authorization": "Bearer test"}
    base = f"{graph.url}/v1.0/users/{SALES}/mailFolders"
    children = httpx.get(f"{base}/inbox/childFolders", headers=headers).json()["value"]
    assert [c["displayName"] for c in children] == ["Projects"]
    params = {"$filter": f"receivedDateTime lt {CUTOFF}", "$top": "2", "$select": "subject"}
    inbox = f"{graph.url}/v1.0/users/{SUPPORT}/mailFolders/inbox/messages"
    first = httpx.get(inbox, params=params, headers=headers).json()
    assert [m["subject"] for m in first["value"]] == ["old-of-kari-2", "old-of-kari-3"]
    skipped = httpx.get(inbox, params={**params, "$skip": "2"}, headers=headers).json()
    assert [m["subject"] for m in skipped["value"]] == ["old-inbox-0", "old-inbox-1"]
    assert "%24skip=4" in skipped["@odata.nextLink"]

"""A plugin (tests/conftest.py): a config for identity and delivery tests — the hand-made
on-prem fixture (for a real access export), a Graph emulator with the officer's mailbox, and a
Jira emulator with one service desk whose requests are raised by the subject, by the subject
with another participant, by the subject with a hidden address, and by a look-alike."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyzipper
import yaml
from typer.testing import CliRunner, Result

from dsrflow.cli import app
from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from sandbox.emulators.graph import GraphStore, create_app
from sandbox.emulators.jira import JiraEmulator, JiraStore
from sandbox.emulators.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
SUBJECT = "al@example.com"
OFFICER_BOX = "privacy@fjelltopp.example"
TOKEN = "handover-token"
TOKEN_ENV = "DSRFLOW_TEST_HANDOVER_JIRA_TOKEN"


@dataclass
class Channels:
    config: Path
    graph: GraphStore
    jira: JiraStore
    jira_emulator: JiraEmulator

    def cli(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, [*args, "--config", str(self.config)], input=input)

    def ledger(self) -> Ledger:
        return Ledger.from_config(load_config(self.config))

    def events(self, request_id: str) -> list[str]:
        with self.ledger() as ledger:
            return [e.event for e in ledger.entries(request_id)]

    def sent(self) -> list[dict[str, Any]]:
        """The officer's Sent Items, as the Graph emulator holds them."""
        box = self.graph.mailbox(OFFICER_BOX)
        assert box is not None
        sent = box.folder("sentitems")
        assert sent is not None
        return [
            {**s.resource, "attachments": s.attachments}
            for s in box.messages.values()
            if s.resource["parentFolderId"] == sent.id
        ]

    def onprem_only(self) -> None:
        """The channels stay set up, but the on-prem database is the only source searched."""
        data = yaml.safe_load(self.config.read_text())
        data["sources"] = {"onprem": data["sources"]["onprem"]}
        data["identity"] = {"required": data["identity"]["required"]}
        data.pop("delivery", None)
        self.config.write_text(yaml.safe_dump(data))

    def set_identity(self, **values: Any) -> None:
        data = yaml.safe_load(self.config.read_text())
        data["identity"] = {**data.get("identity", {}), **values}
        self.config.write_text(yaml.safe_dump(data))


def jira_store() -> JiraStore:
    store = JiraStore()
    store.credentials = ("dsrflow@fjelltopp.example", TOKEN)
    store.add_user("557058:agent", "dsrflow@fjelltopp.example", "dsrflow agent")
    store.add_user("qm:al", SUBJECT, "Al Subject", "customer")
    store.add_user("qm:al-hidden", SUBJECT, "Al Hidden", "atlassian", email_visible=False)
    store.add_user("qm:bo", "bo@example.org", "Bo Other", "customer")
    store.add_user("qm:sal", "sal@example.com", "Sal Lookalike", "customer")
    store.add_servicedesk("1", "SUP", "Support", ["qm:al", "qm:bo", "qm:sal"])
    own = {"summary": "Privacy request", "reporter": "qm:al"}
    store.add_issue("SUP-1", own)
    store.add_issue("SUP-2", own, participants=["qm:bo"])
    store.add_issue("SUP-3", {**own, "reporter": "qm:al-hidden"})
    store.add_issue("SUP-4", {**own, "reporter": "qm:sal"})
    return store


@pytest.fixture
def channels(
    onprem_config: Path, monkeypatch: pytest.MonkeyPatch, masking_key: None
) -> Iterator[Channels]:
    """The on-prem config plus a mail and a Jira source on running emulators; identity
    required (as in a real config); the ledger keyed (one-time codes are HMACs under it)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("DSRFLOW_LEDGER_KEY", "handover-ledger-key")
    graph = GraphStore()
    graph.add_mailbox(OFFICER_BOX, "Privacy")
    store = jira_store()
    emulator = JiraEmulator(store)
    with (
        EmulatorServer(create_app(graph), name="graph-handover") as graph_url,
        EmulatorServer(emulator.app, name="jira-handover") as jira_url,
    ):
        data = yaml.safe_load(onprem_config.read_text())
        data["sources"]["mail"] = {
            "kind": "mail",
            "mapping": str(REPO / "mappings" / "mail.yaml"),
            "base_url": f"{graph_url}/v1.0",
        }
        data["sources"]["desk"] = {
            "kind": "jira",
            "mapping": str(REPO / "mappings" / "jira.yaml"),
            "url": jira_url,
            "email": "dsrflow@fjelltopp.example",
            "api_token": {"env": TOKEN_ENV},
            "max_retries": 0,
        }
        data["identity"] = {"required": True, "mail_source": "mail", "sender": OFFICER_BOX}
        data["delivery"] = {"jira_source": "desk"}
        path = onprem_config.parent / "handover.yaml"
        path.write_text(yaml.safe_dump(data))
        yield Channels(path, graph, store, emulator)


def exported(channels: Channels, request_id: str, tmp: Path) -> Path:
    """Answer an access request of the subject on the on-prem source alone (the config
    without the emulators' sources: they are channels here, not sources to search)."""
    data = yaml.safe_load(channels.config.read_text())
    data["sources"] = {"onprem": data["sources"]["onprem"]}
    access_only = channels.config.parent / "access-only.yaml"
    access_only.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(
        app,
        [
            *("access", "--subject", SUBJECT, "--request-id", request_id),
            *("--config", str(access_only), "--out", str(tmp / "exports")),
        ],
    )
    assert result.exit_code == 0, result.output
    folder = tmp / "exports" / request_id
    assert (folder / "manifest.json").exists()
    return folder


# What the delivery tests check of an archive (tests/test_delivery.py, the browser walk-through).


def password_in(output: str) -> str:
    found = re.search(r"password \(give it.*?\): (\S+)", output)
    assert found, output
    return found.group(1)


def unpacked(archive: bytes, password: str) -> dict[str, bytes]:
    with pyzipper.AESZipFile(io.BytesIO(archive)) as zipped:
        zipped.setpassword(password.encode())
        infos = zipped.infolist()
        assert infos and all(i.flag_bits & 0x1 for i in infos)  # every entry encrypted
        return {i.filename: zipped.read(i.filename) for i in infos}


def matches_manifest(files: dict[str, bytes], folder: Path) -> None:
    manifest = json.loads(files[f"{folder.name}/manifest.json"])
    assert manifest == json.loads((folder / "manifest.json").read_text())
    expected = {f"{folder.name}/{e['name']}": e["sha256"] for e in manifest["files"]}
    got = {n: hashlib.sha256(c).hexdigest() for n, c in files.items() if n in expected}
    assert got == expected
    assert set(files) == {*expected, f"{folder.name}/manifest.json"}

"""The preflight: every precondition of a right checked per source before anything is read or
planned, each problem one line naming the source and the setting."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from prefect.logging import disable_run_logger

from connectors.mail.client import StaticTokenCredential
from connectors.mail.connector import MailConnector
from connectors.mail.settings import MailSource
from connectors.masking import MaskingKey, mask
from dsrflow.config import ConfigError, load_config
from dsrflow.mapping import load_mapping
from dsrflow.preflight import PreflightError, preflight
from dsrflow.request import RequestType
from dsrflow.secrets import SecretRef
from flows.tasks import check_sources
from sandbox import jira_seed
from sandbox.emulators.jira import JiraEmulator, JiraStore
from sandbox.emulators.server import EmulatorServer
from sandbox.runtime import RunningSandbox, onprem_source, start, write_config
from tests.conftest import ONPREM_MAPPING, REPO, load_sandbox_fixture

KEY_PROBLEM = "set masking_key in the config file, or DSRFLOW_HMAC_KEY"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSRFLOW_HMAC_KEY", raising=False)


def onprem_config(tmp_path: Path, url: str, **top: Any) -> Path:
    path = tmp_path / "dsrflow.yaml"
    write_config(path, onprem_source(url), tmp_path / "out")
    data = yaml.safe_load(path.read_text("utf-8"))
    data.update(top)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- the masking key -------------------------------------------------------------------------


def test_a_missing_masking_key_is_one_problem_before_any_plan(sandbox_sqlite_url, tmp_path):
    config = load_config(onprem_config(tmp_path, sandbox_sqlite_url))
    erasure = preflight(config, RequestType.ERASURE)
    assert len(erasure.problems) == 1
    problem = erasure.problems[0]
    assert problem.startswith("onprem: mapping uses hmac_sha256 masking (")
    assert KEY_PROBLEM in problem
    # Access never masks: nothing stops it.
    assert preflight(config, RequestType.ACCESS).problems == []
    # The flows' check raises one user-facing error (exit 2 in the CLI) with that line.
    with pytest.raises(PreflightError) as raised:
        check_sources.fn(config, RequestType.ERASURE)
    assert isinstance(raised.value, ConfigError)
    assert str(raised.value) == f"not ready for erasure: {problem}"
    with disable_run_logger():
        assert set(check_sources.fn(config)) == {"onprem"}  # discovery alone is fine


def test_the_config_key_file_is_relative_to_the_config_and_wins_over_the_env(
    sandbox_sqlite_url, tmp_path, monkeypatch
):
    (tmp_path / "secrets").mkdir(mode=0o700)
    key_file = tmp_path / "secrets" / "key"
    key_file.write_text("from-the-file\n", encoding="utf-8")
    key_file.chmod(0o600)
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "from-the-env")
    config = load_config(
        onprem_config(tmp_path, sandbox_sqlite_url, masking_key={"file": "secrets/key"})
    )
    assert config.masking_key == SecretRef(file=key_file.resolve())
    assert config.sources["onprem"].masking_key == SecretRef(file=key_file.resolve())
    assert preflight(config, RequestType.ERASURE).problems == []
    key = MaskingKey(config.sources["onprem"].masking_key)
    expected = hmac.new(b"from-the-file", b"al@example.com", hashlib.sha256).hexdigest()
    assert mask("hmac_sha256", "al@example.com", None, key) == "hmac:" + expected


def test_a_key_file_others_can_read_is_a_problem(sandbox_sqlite_url, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("k", encoding="utf-8")
    key_file.chmod(0o644)
    config = load_config(onprem_config(tmp_path, sandbox_sqlite_url, masking_key={"file": "key"}))
    [problem] = preflight(config, RequestType.ERASURE).problems
    assert "readable by others; chmod 600" in problem
    assert str(key_file) in problem


def test_the_env_key_still_serves(sandbox_sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "from-the-env")
    config = load_config(onprem_config(tmp_path, sandbox_sqlite_url))
    assert preflight(config, RequestType.ERASURE).problems == []


def test_a_sql_mapping_naming_a_missing_table(sandbox_sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "k")
    mapping = yaml.safe_load(ONPREM_MAPPING.read_text("utf-8"))
    first = next(iter(mapping["tables"]))
    mapping["tables"]["no_such_table"] = copy.deepcopy(mapping["tables"][first])
    mapping["tables"]["no_such_table"]["references"] = []
    bad = tmp_path / "onprem.yaml"
    bad.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    path = onprem_config(tmp_path, sandbox_sqlite_url)
    data = yaml.safe_load(path.read_text("utf-8"))
    data["sources"]["onprem"]["mapping"] = str(bad)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    problems = preflight(load_config(path), RequestType.ERASURE).problems
    assert f"onprem: mapping {bad}: tables.no_such_table: no such table in the database" in problems


@pytest.mark.postgres
def test_postgres_privileges_the_right_needs(pg_database, tmp_path, monkeypatch):
    """A database user that may only read: access is fine, erasure names what to GRANT."""
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "k")
    load_sandbox_fixture(pg_database)
    url = sa.engine.make_url(pg_database)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP ROLE IF EXISTS dsr_reader"))
        conn.execute(sa.text("CREATE ROLE dsr_reader LOGIN PASSWORD 'reader'"))
        conn.execute(sa.text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO dsr_reader"))
    engine.dispose()
    reader = url.set(username="dsr_reader", password="reader")
    config = load_config(onprem_config(tmp_path, reader.render_as_string(hide_password=False)))
    assert preflight(config, RequestType.ACCESS).problems == []
    problems = preflight(config, RequestType.ERASURE).problems
    assert problems, "a read-only user passed the erasure preflight"
    assert all(p.startswith("onprem: the database user lacks ") for p in problems)
    assert any("DELETE, UPDATE on table " in p for p in problems)
    assert all("which erasure needs (GRANT it)" in p for p in problems)


# -- the sandbox's sources -------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


def variant(box: RunningSandbox, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(box.config_path.read_text("utf-8"))
    change(data)
    path = tmp_path / "dsrflow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_sandbox_passes_every_right_without_the_env_key(box):
    config = load_config(box.config_path)
    for right in RequestType:
        assert preflight(config, right).problems == [], right


def test_an_unreachable_source(box, tmp_path):
    port = closed_port()

    def change(data: dict[str, Any]) -> None:
        data["sources"]["jira"] |= {"url": f"http://127.0.0.1:{port}", "max_retries": 0}
        data["sources"]["mail"] |= {"base_url": f"http://127.0.0.1:{port}/v1.0", "max_retries": 0}

    problems = preflight(load_config(variant(box, tmp_path, change)), "erasure").problems
    assert [p.split(":")[0] for p in problems] == ["jira", "mail"]
    assert problems[0].startswith("jira: cannot be reached or refused access: reading serverInfo")
    assert problems[1] == (
        "mail: the tenant's users cannot be listed: Microsoft Graph cannot be reached "
        "(ConnectError)"
    )


def test_bad_credentials(box, tmp_path):
    token = tmp_path / "wrong-token"
    token.write_text("not-the-token", encoding="utf-8")
    token.chmod(0o600)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = json.loads(
        Path(
            yaml.safe_load(box.config_path.read_text())["sources"]["drive"]["credentials_file"]
        ).read_text()
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key["private_key"] = stranger.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_file = tmp_path / "drive-key.json"
    key_file.write_text(json.dumps(key), encoding="utf-8")

    def change(data: dict[str, Any]) -> None:
        data["sources"]["jira"]["api_token"] = {"file": str(token)}
        data["sources"]["drive"]["credentials_file"] = str(key_file)

    problems = preflight(load_config(variant(box, tmp_path, change)), "access").problems
    assert len(problems) == 2, problems
    assert problems[0] == (
        "jira: cannot be reached or refused access: reading serverInfo: access refused (HTTP 401)"
    )
    assert problems[1].startswith("drive: the service account gets no token as dsr-officer@")
    assert (
        "domain-wide delegation grants https://www.googleapis.com/auth/drive.readonly"
        in (problems[1])
    )


def test_mappings_naming_a_missing_folder_and_project(box, tmp_path):
    drive = yaml.safe_load(Path(box.parts["drive"].sources["drive"]["mapping"]).read_text())
    drive["folders"] = [*drive["folders"], {"id": "no-such-folder"}, {"name": "No Such Folder"}]
    drive_file = tmp_path / "drive.yaml"
    drive_file.write_text(yaml.safe_dump(drive), encoding="utf-8")
    jira = yaml.safe_load((REPO / "mappings" / "jira.yaml").read_text())
    jira["projects"] = [*jira["projects"], "NOPE"]
    jira_file = tmp_path / "jira.yaml"
    jira_file.write_text(yaml.safe_dump(jira), encoding="utf-8")

    def change(data: dict[str, Any]) -> None:
        data["sources"]["drive"]["mapping"] = str(drive_file)
        data["sources"]["jira"]["mapping"] = str(jira_file)

    problems = preflight(load_config(variant(box, tmp_path, change)), "access").problems
    index = len(drive["folders"]) - 2
    assert problems == [
        f"jira: mapping {jira_file} projects.{len(jira['projects']) - 1}: no project 'NOPE' on "
        "this site, or the account cannot browse it",
        f"drive: mapping {drive_file} folders.{index}: no folder no-such-folder readable here",
        f"drive: mapping {drive_file}: folder 'No Such Folder' not found",
    ]


def test_a_jira_account_without_the_permissions_erasure_needs(tmp_path, monkeypatch):
    store = JiraStore()
    jira_seed.generate(store)
    store.denied_permissions = {"DELETE_ISSUES", "USER_PICKER"}
    server = EmulatorServer(JiraEmulator(store).app, name="jira")
    url = server.start()
    try:
        token = tmp_path / "token"
        token.write_text(jira_seed.SANDBOX_TOKEN, encoding="utf-8")
        token.chmod(0o600)
        from sandbox.jira_part import jira_source

        path = tmp_path / "dsrflow.yaml"
        write_config(path, jira_source(url, token), tmp_path / "out")
        config = load_config(path)
        projects = load_mapping(config.sources["jira"].mapping).projects
        assert preflight(config, "restriction").problems == [
            "jira: the account lacks the global permission Browse users and groups (USER_PICKER)"
        ]
        erasure = preflight(config, "erasure").problems
        assert erasure[1:] == [
            f"jira: the account lacks Delete Issues (DELETE_ISSUES) in project {p}, which "
            "erasure needs"
            for p in projects
        ]
    finally:
        server.stop()


def app_token(roles: list[str]) -> str:
    """An app-only token as Entra ID issues it: a JWT whose ``roles`` are its permissions."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'roles': roles})}.signature"


def test_graph_application_permissions_from_the_token(box):
    settings = MailSource.model_validate(box.parts["mail"].sources["mail"])
    mapping = load_mapping(settings.mapping)

    def problems(roles: list[str], right: RequestType) -> list[str]:
        credential = StaticTokenCredential(app_token(roles))
        connector = MailConnector("mail", mapping, settings, credential=credential)
        try:
            return connector.preflight(right)
        finally:
            connector.close()

    assert mapping.mailboxes.all_users  # the sandbox searches every mailbox: User.Read.All
    assert problems(["Mail.Read", "User.Read.All"], RequestType.ACCESS) == []
    assert problems(["Mail.Read", "User.Read.All"], RequestType.ERASURE) == [
        "the app lacks the Graph application permission Mail.ReadWrite (admin consent "
        "granted), which erasure needs"
    ]
    assert problems(["Mail.ReadWrite", "User.Read.All"], RequestType.ERASURE) == []
    assert problems(["Mail.ReadWrite"], RequestType.ACCESS) == [
        "the app lacks the Graph application permission User.Read.All (admin consent "
        "granted), which access needs"
    ]


def test_a_mailbox_the_tenant_does_not_have(box, tmp_path):
    mail = yaml.safe_load(Path(box.parts["mail"].sources["mail"]["mapping"]).read_text())
    mail["mailboxes"] = {"addresses": ["support@fjelltopp.example", "nobody@fjelltopp.example"]}
    mail_file = tmp_path / "mail.yaml"
    mail_file.write_text(yaml.safe_dump(mail), encoding="utf-8")

    def change(data: dict[str, Any]) -> None:
        data["sources"]["mail"] |= {"mapping": str(mail_file), "max_retries": 0}

    [problem] = preflight(load_config(variant(box, tmp_path, change)), "access").problems
    assert problem.startswith(
        f"mail: mapping {mail_file} mailboxes.addresses.1: mailbox nobody@fjelltopp.example: "
        "Microsoft Graph answered HTTP 404"
    )


def test_the_jira_emulator_serves_get_my_permissions_as_the_reference_says():
    store = JiraStore()
    jira_seed.generate(store)
    store.denied_permissions = {"DELETE_ISSUES"}
    server = EmulatorServer(JiraEmulator(store).app, name="jira")
    url = server.start()
    auth = (jira_seed.SANDBOX_EMAIL, jira_seed.SANDBOX_TOKEN)
    try:
        project = sorted(store.project_keys())[0]
        answer = httpx.get(
            f"{url}/rest/api/2/mypermissions",
            params={"projectKey": project, "permissions": "EDIT_ISSUES,DELETE_ISSUES"},
            auth=auth,
        )
        assert answer.status_code == 200
        held = answer.json()["permissions"]
        assert held["EDIT_ISSUES"]["havePermission"] is True
        assert held["DELETE_ISSUES"]["havePermission"] is False
        assert held["DELETE_ISSUES"]["name"] == "Delete Issues"
        unknown = httpx.get(
            f"{url}/rest/api/2/mypermissions",
            params={"projectKey": "NOPE", "permissions": "EDIT_ISSUES"},
            auth=auth,
        )
        assert unknown.status_code == 404
        assert unknown.json()["errorMessages"] == ["No project could be found with key 'NOPE'."]
        required = httpx.get(f"{url}/rest/api/2/mypermissions", auth=auth)
        assert required.status_code == 400
        bad_key = httpx.get(
            f"{url}/rest/api/2/mypermissions", params={"permissions": "FLY"}, auth=auth
        )
        assert bad_key.status_code == 400
    finally:
        server.stop()

"""Discovery's later rounds search only the sources that can look up the new identifiers, and
only with them (flows/discovery.py), on the whole sandbox: every emulator over real HTTP, the
on-prem database and extra SQL sources. What each source was asked is read from the emulators'
request counts (``GET /_emulator/stats``) and from the statements SQLAlchemy sends; the answer
is compared with one search by every identifier at once, which is what the last round of the
old discovery (every source again, with everything) amounted to."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from connectors.jira import sitecache
from connectors.jira.client import JiraClient
from dsrflow.config import Config, load_config
from dsrflow.identifiers import phone_spellings
from dsrflow.ledger import Ledger
from dsrflow.request import DataSubjectRequest, RequestType, Subject
from dsrflow.run_settings import run_settings
from flows.access import AccessResult, access_request
from sandbox.onprem_seed import DEMO_PHONE, DEMO_SUBJECT
from sandbox.runtime import RunningSandbox, start

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

PHONE = "+4791234567"  # DEMO_PHONE in E.164
EMULATED = ("jira", "mail", "drive", "marketplace")
CATEGORIES = (
    "categories: {user: {purposes: [test], legal_basis: contract, retention: test},\n"
    "  system: {purposes: [test], legal_basis: contract, retention: test}}\n"
)


class Statements:
    """Every statement SQLAlchemy sends, with its parameters, per database file."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[str]]] = []
        self._lock = threading.Lock()

    def __call__(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        with self._lock:
            self.sent.append(
                (str(conn.engine.url.database or ""), statement, [str(v) for v in values])
            )

    def to(self, database: str) -> list[list[str]]:
        """The parameters of every statement sent to the database file named ``database``."""
        with self._lock:
            return [p for db, _, p in self.sent if db.endswith(database)]


@pytest.fixture
def statements() -> Iterator[Statements]:
    listener = Statements()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listener)
    try:
        yield listener
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", listener)


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[RunningSandbox]:
    with start(tmp_path_factory.mktemp("expansion")) as running:
        yield running


def emulator_urls(config: Config) -> dict[str, str]:
    urls = {}
    for name in EMULATED:
        settings = config.sources[name]
        base = getattr(settings, "url", None) or getattr(settings, "api_url", None)
        base = base or str(getattr(settings, "base_url", "")).removesuffix("/v1.0")
        urls[name] = str(base).rstrip("/")
    return urls


# What a Jira site says about itself is kept between requests (site_facts_file): whether a
# request reads it depends on what ran before, not on the request, so it is not counted.
JIRA_SITE_FACTS = {"GET serverInfo", "GET field", "GET servicedesk"}


def requests_made(urls: dict[str, str]) -> dict[str, Counter[str]]:
    made = {
        name: Counter(httpx.get(f"{url}/_emulator/stats").json()["requests"])
        for name, url in urls.items()
    }
    for route in JIRA_SITE_FACTS:
        made.get("jira", Counter()).pop(route, None)
    return made


def jira_account_of(config: Config, email: str) -> str:
    """The subject's account id, as Jira's user search answers an agent (through the SDK)."""
    client = JiraClient("jira", config.sources["jira"])  # type: ignore[arg-type]
    try:
        users = client.get_json("searching users", "user/search", {"query": email})
    finally:
        client.close()
    (user,) = [u for u in users if str(u.get("emailAddress", "")).lower() == email]
    return str(user["accountId"])


def with_source(box: RunningSandbox, folder: Path, name: str, source: dict[str, Any]) -> Path:
    """A copy of the sandbox's config with one more source."""
    data = yaml.safe_load(box.config_path.read_text())
    data["sources"][name] = source
    data["output_dir"] = str(folder / "exports")
    path = folder / "dsrflow.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sqlite_source(folder: Path, name: str, ddl: str, rows: str, mapping: str) -> dict[str, Any]:
    url = f"sqlite:///{folder / f'{name}.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(ddl))
        conn.execute(sa.text(rows))
    engine.dispose()
    (folder / f"{name}.yaml").write_text("kind: sql\n" + CATEGORIES + mapping)
    return {"kind": "sql", "url": url, "mapping": str(folder / f"{name}.yaml")}


@dataclass
class Answer:
    result: AccessResult
    records: dict[str, Any]
    requests: dict[str, Counter[str]]
    logs: list[str]


def answer(config_path: Path, request_id: str, subject: Subject, urls: dict[str, str]) -> Answer:
    """The access flow for a request opened in the ledger first (as the command line does),
    with the emulators' requests it made and its log lines."""
    sitecache.forget_all()  # each request starts cold, so the two compare like for like
    config = load_config(config_path)
    with Ledger.from_config(config) as ledger:
        ledger.open_request(
            DataSubjectRequest(
                id=request_id,
                type=RequestType.ACCESS,
                subject=subject,
                received_at=dt.datetime.now(dt.UTC),
            )
        )
    before = requests_made(urls)
    with run_settings(config_path):
        state = access_request(request_id=request_id, return_state=True)
    assert state.is_completed(), state.message
    after = requests_made(urls)
    result = state.result()
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    return Answer(
        result,
        document["records"],
        {name: after[name] - before[name] for name in urls},
        flow_logs(state.state_details.flow_run_id),
    )


def flow_logs(flow_run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
                offset=0,
            )
        return [log.message for log in logs]

    return asyncio.run(read())


def round_line(logs: list[str], number: int) -> str:
    (line,) = [m for m in logs if m.startswith(f"round {number}: searching")]
    return line


def test_a_jira_account_found_is_looked_up_only_where_accounts_can_be(
    box: RunningSandbox, tmp_path: Path, statements: Statements
) -> None:
    config = load_config(box.config_path)
    urls = emulator_urls(config)
    account = jira_account_of(config, DEMO_SUBJECT)
    links = sqlite_source(
        tmp_path,
        "links",
        "CREATE TABLE jira_links (id INTEGER PRIMARY KEY, account_id TEXT, note TEXT)",
        f"INSERT INTO jira_links VALUES (1, '{account}', 'site admin'), (2, 'other', 'x')",
        "tables:\n  jira_links:\n    primary_key: [id]\n"
        "    identities: [{column: account_id, kind: jira_account_id}]\n"
        "    columns: {account_id: {category: user.unique_id}}\n",
    )
    path = with_source(box, tmp_path, "links", links)

    # Jira finds the account by the address; round two searches `links` by it alone.
    found = answer(path, "DSR-2026-0701", Subject.from_raw([DEMO_SUBJECT]), urls)
    sent_then = statements.to("links.db")
    # The same request with the account given at once: one round, every source once.
    given = answer(
        path,
        "DSR-2026-0702",
        Subject.from_raw([DEMO_SUBJECT], jira_accounts=[account]),
        urls,
    )

    # Mail, Drive, the Marketplace and Jira itself were searched once, as with the account given.
    for source in EMULATED:
        assert found.requests[source] == given.requests[source], source
        assert found.requests[source].total() > 0, source
    assert found.result.expansion_rounds == 2 and given.result.expansion_rounds == 1
    line = round_line(found.logs, 2)
    assert line.startswith("round 2: searching links (1 jira_account_id new); not searching")
    for source in ("onprem", "mail", "drive", "marketplace"):
        assert f"{source} (cannot look up by jira_account_id)" in line, line
    assert "jira (searched by every identifier already)" in line  # found and searched by it
    # `links` was asked by the account id only: no address reached it.
    assert any(account in params for params in sent_then)
    assert not any("@" in value for params in sent_then for value in params)
    # The same answer as searching with everything at once.
    assert found.records == given.records
    assert [r["native_id"] for r in found.records["links"]["user.unique_id"]] == [{"id": 1}]


def test_a_phone_found_is_looked_up_only_by_sources_that_can(
    box: RunningSandbox, tmp_path: Path, statements: Statements
) -> None:
    config = load_config(box.config_path)
    urls = emulator_urls(config)
    crm = sqlite_source(
        tmp_path,
        "crm",
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, mobile TEXT)",
        f"INSERT INTO people VALUES (1, '{DEMO_SUBJECT}', '{DEMO_PHONE}')",
        "tables:\n  people:\n    primary_key: [id]\n"
        "    identities: [{column: email, kind: email}]\n"
        "    expands_identity: [{column: mobile, kind: phone}]\n"
        "    columns: {email: {category: user.contact.email}, "
        "mobile: {category: user.contact.phone}}\n",
    )
    path = with_source(box, tmp_path, "crm", crm)

    start_found = len(statements.sent)
    found = answer(path, "DSR-2026-0711", Subject.from_raw([DEMO_SUBJECT]), urls)
    found_sql = statements.to("onprem.db")
    statements.sent[start_found:] = []
    given = answer(
        path, "DSR-2026-0712", Subject.from_raw([DEMO_SUBJECT], phones=[DEMO_PHONE]), urls
    )
    given_sql = statements.to("onprem.db")

    assert found.result.expansion_rounds == 2 and given.result.expansion_rounds == 1
    line = round_line(found.logs, 2)
    # On-prem looks people up by phone: by the phone alone.
    assert "onprem (1 phone new)" in line, line
    # Jira, Drive and crm showed the number masked in round one (it was nobody's yet, so
    # someone else's): judged again with every identifier, so that it is the subject's now.
    for source in ("jira", "drive", "crm"):
        assert f"{source} (holds what may be 1 phone new, masked: judged again with all)" in line
    # Mail and the Marketplace cannot look anyone up by phone and showed no such number.
    for source in ("mail", "marketplace"):
        assert f"{source} (cannot look up by jira_account_id, phone)" in line, line
        assert found.requests[source] == given.requests[source], source
    assert found.requests["drive"].total() > given.requests["drive"].total()

    # On-prem: the addresses' statements once (round one), the phone's spellings in round two.
    def with_address(sent: list[list[str]]) -> int:
        return sum(any("@" in v for v in params) for params in sent)

    assert with_address(found_sql) == with_address(given_sql)
    spellings = set(phone_spellings(PHONE))
    by_phone = [p for p in found_sql if spellings & set(p)]
    assert by_phone and not any("@" in v for p in by_phone for v in p)
    assert found.records == given.records

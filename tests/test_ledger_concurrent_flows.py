"""Issue 12 §5 end to end: erasures run at the same time against one ledger, SQLite and
PostgreSQL; every step of each is recorded and the chain and tables verify."""

import threading

import pytest
import yaml

from dsrflow.config import load_config
from dsrflow.ledger import Ledger
from dsrflow.run_settings import run_settings
from flows.erasure import erasure_request
from sandbox.runtime import onprem_source, write_config
from tests.conftest import load_sandbox_fixture
from tests.support.approval import approved

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
RUNS = 6  # three ran through without a clash before appends were serialised; six clashed


@pytest.fixture(autouse=True)
def hmac_key(monkeypatch):
    monkeypatch.setenv("DSRFLOW_HMAC_KEY", "test-key")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_database")


def test_erasures_at_once_all_recorded(tmp_path, ledger_url):
    configs = []
    for n in range(RUNS):
        # Each its own source database (the sandbox's SQLite file), all one ledger.
        source = load_sandbox_fixture(f"sqlite:///{tmp_path / f'onprem{n}.db'}")
        config = tmp_path / f"dsrflow{n}.yaml"
        write_config(config, onprem_source(source), tmp_path / "out")
        config.write_text(
            yaml.safe_dump({**yaml.safe_load(config.read_text()), "ledger_url": ledger_url})
        )
        configs.append(config)
    start = threading.Barrier(RUNS)
    outcome: dict[int, object] = {}

    def run(n: int) -> None:
        start.wait()
        try:
            with run_settings(configs[n]):
                outcome[n] = approved(
                    erasure_request,
                    request_id=f"DSR-2026-{n + 1:04d}",
                    subject_emails=["al@example.com"],
                ).status
        except BaseException as exc:  # reported below with the others
            outcome[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome == {n: "completed" for n in range(RUNS)}
    ledger = Ledger(load_config(configs[0]).ledger_url)
    try:
        assert ledger.verify() == []
        for n in range(RUNS):
            events = [e.event for e in ledger.entries(f"DSR-2026-{n + 1:04d}")]
            done = [e for e in events if e in ("executed", "holds_queued", "status:completed")]
            assert done == ["executed", "holds_queued", "status:completed"]
            assert events[-1] == "status:completed"
    finally:
        ledger.close()

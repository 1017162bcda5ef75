"""Issue 12 §5: requests run at the same time, each with its own Ledger (threads and
processes), on SQLite and PostgreSQL: every entry is kept and the chain stays intact."""

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from dsrflow.ledger import Ledger, Status
from tests.test_ledger import make_request

WORKERS = 6
ENTRIES = 15


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_database")


def run_request(url: str, number: int, start: threading.Barrier | None = None) -> None:
    """One request's life with its own Ledger, as a flow run has it."""
    if start:
        start.wait()
    ledger = Ledger(url)
    try:
        request_id = f"DSR-2026-{number:04d}"
        ledger.open_request(make_request(request_id))
        ledger.set_status(request_id, Status.IN_PROGRESS)
        for n in range(ENTRIES):
            ledger.record(request_id, "executed", source=f"s{n}", done=n)
        ledger.set_status(request_id, Status.COMPLETED)
    finally:
        ledger.close()


def check(url: str, requests: int) -> None:
    ledger = Ledger(url)
    try:
        assert ledger.verify() == []
        entries = list(ledger.entries())
        assert len(entries) == requests * (ENTRIES + 3)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        for number in range(1, requests + 1):
            events = [e.event for e in ledger.entries(f"DSR-2026-{number:04d}")]
            assert events.count("executed") == ENTRIES
            assert events[-1] == "status:completed"
    finally:
        ledger.close()


def test_threads_append_concurrently(ledger_url):
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            run_request(ledger_url, number, start)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, WORKERS + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check(ledger_url, WORKERS)


def test_processes_append_concurrently(ledger_url):
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a worker has
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        list(pool.map(run_request, [ledger_url] * WORKERS, range(1, WORKERS + 1)))
    check(ledger_url, WORKERS)

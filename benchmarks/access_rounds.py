"""Access-request benchmark: what discovery's later rounds cost, every source again with every
identifier (``previous``, as before issue 18) against only the sources that can look up the
new identifiers, with them alone (``current``, flows/discovery.py).

The whole sandbox (small profile: on-prem SQLite, the Graph, Drive/Sheets, Jira and
Marketplace emulators, Analytics) answers the demo subject's access request through the
access flow on a temporary local Prefect server, as ``dsr demo`` does; every emulator adds
``--latency-ms`` to each request. The two ways alternate run by run (previous, current,
previous, …) so that the machine's load falls on both alike. Measured per run: the flow's
wall time, the requests each emulator answered (its ``/_emulator/stats``), the statements
sent to the on-prem database, the discovery rounds, and whether the exports' records are the
same. Printed: medians, and the counts of the
last run of each way (they do not vary). ``--json`` prints them for ``make bench`` instead,
as a JSON list of ``{"name", "figure", "unit", "anchor", "ratio", "target"}``, each the
current way against the previous one (``bench_figures`` below); the rest goes to stderr.

    python -m benchmarks.access_rounds [--latency-ms 20] [--runs 3] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa

from dsrflow.local_prefect import private_home

if TYPE_CHECKING:
    from dsrflow.config import Config
    from dsrflow.mapping import BaseMapping
    from dsrflow.request import Subject
    from flows.discovery import Discovery

EMULATED = ("jira", "mail", "drive", "marketplace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each way")
    parser.add_argument("--dir", type=Path, default=None, help="sandbox folder (default: temp)")
    parser.add_argument("--json", action="store_true", help="print the make-bench figures")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    # With --json only the figures go to stdout (make bench reads them); the rest to stderr.
    out = sys.stderr if args.json else sys.stdout
    folder = args.dir or Path(tempfile.mkdtemp(prefix="dsrflow-rounds-"))
    private_home(folder)  # before Prefect is imported

    import flows.access
    from dsrflow.config import load_config
    from dsrflow.local_prefect import prefect_server
    from sandbox.emulators.faults import FaultSettings
    from sandbox.runtime import start

    ways: dict[str, Callable[..., Any]] = {
        "previous": every_source_every_round,
        "current": flows.access.discover_everywhere,
    }
    figures: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
    with (
        prefect_server(lambda m: print(m, file=sys.stderr)),
        start(folder / "sandbox", faults=FaultSettings(latency_ms=args.latency_ms)) as box,
    ):
        config = load_config(box.config_path)
        urls = {name: emulator_url(config.sources[name]) for name in EMULATED}
        one_request(box.config_path, "DSR-2026-9000", urls)  # warm: imports, first flow run
        number = 9001
        for _ in range(args.runs):
            for way, discover in ways.items():
                spent: list[float] = []
                flows.access.discover_everywhere = timed(discover, spent)
                run = one_request(box.config_path, f"DSR-2026-{number}", urls)
                figures[way].append(run | {"discovery_s": sum(spent)})
                number += 1
    same = same_records(figures)
    print(f"the same records in every export of both ways: {'yes' if same else 'NO'}", file=out)
    for way, runs in figures.items():
        walls = [r["wall_s"] for r in runs]
        discovery = [r["discovery_s"] for r in runs]
        last = runs[-1]
        print(
            f"{way}: flow wall time median {statistics.median(walls):.2f} s "
            f"(runs {', '.join(f'{w:.2f}' for w in walls)}); discovery median "
            f"{statistics.median(discovery):.2f} s "
            f"(runs {', '.join(f'{w:.2f}' for w in discovery)}); rounds {last['rounds']}; "
            f"requests {sum(last['requests'].values())} "
            f"({', '.join(f'{k} {v}' for k, v in last['requests'].items())}); "
            f"on-prem statements {last['statements']}; records {last['records']}",
            file=out,
        )
    if args.json:
        print(json.dumps(bench_figures(figures), indent=2))
    return 0


def same_records(runs: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether every export of both ways holds the same records."""
    return len({run["answer"] for way in runs.values() for run in way}) == 1


def bench_figures(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ``make bench`` figures of the runs of each way: the current way's against the
    previous way's (anchor). Requests and statements are the last run's (they do not vary);
    times are medians."""
    previous, current = runs["previous"], runs["current"]

    def against(
        name: str,
        unit: str,
        measure: Callable[[list[dict[str, Any]]], float],
        target: str | None,
        digits: int = 2,
    ) -> dict[str, Any]:
        figure, anchor = measure(current), measure(previous)
        return {
            "name": name,
            "figure": round(figure, digits),
            "unit": unit,
            "anchor": round(anchor, digits),
            "ratio": round(figure / anchor, 2) if anchor else None,
            "target": target,
        }

    def requests(way: list[dict[str, Any]]) -> float:
        return sum(way[-1]["requests"].values())

    return [
        # Expansion must not ask the vendors more than re-running every source did.
        against(
            "emulator requests, new rounds / every source again", "requests", requests, "<= 1.0", 0
        ),
        against(
            "on-prem SQL statements, new rounds / every source again",
            "statements",
            lambda way: way[-1]["statements"],
            None,
            0,
        ),
        against(
            "access flow wall time (median), new rounds / every source again",
            "s",
            lambda way: statistics.median(r["wall_s"] for r in way),
            None,
        ),
        against(
            "discovery time (median), new rounds / every source again",
            "s",
            lambda way: statistics.median(r["discovery_s"] for r in way),
            None,
        ),
        {
            "name": "every export of both ways holds the same records (1 = yes)",
            "figure": int(same_records(runs)),
            "unit": "",
            "anchor": None,
            "ratio": None,
            "target": ">= 1",
        },
    ]


def timed(discover: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``discover``, adding the seconds each call takes to ``spent``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return discover(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return call


def emulator_url(settings: Any) -> str:
    base = getattr(settings, "url", None) or getattr(settings, "api_url", None)
    base = base or str(getattr(settings, "base_url", "")).removesuffix("/v1.0")
    return str(base).rstrip("/")


def one_request(config_path: Path, request_id: str, urls: dict[str, str]) -> dict[str, Any]:
    """One access request for the demo subject, opened in the ledger first (as the command
    line does), with what it cost."""
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger
    from dsrflow.request import DataSubjectRequest, RequestType, Subject
    from dsrflow.run_settings import run_settings
    from flows.access import access_request
    from sandbox.onprem_seed import DEMO_SUBJECT

    with Ledger.from_config(load_config(config_path)) as ledger:
        ledger.open_request(
            DataSubjectRequest(
                id=request_id,
                type=RequestType.ACCESS,
                subject=Subject.from_raw([DEMO_SUBJECT]),
                received_at=dt.datetime.now(dt.UTC),
            )
        )
    for url in urls.values():
        httpx.post(f"{url}/_emulator/reset-stats").raise_for_status()
    sent = Counter[str]()
    lock = threading.Lock()

    def count(conn: Any, *_: Any) -> None:
        with lock:
            sent[str(conn.engine.url.database or "")] += 1

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    started = time.perf_counter()
    try:
        with run_settings(config_path):
            result = access_request(request_id=request_id)
    finally:
        wall = time.perf_counter() - started
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    requests = {
        name: int(httpx.get(f"{url}/_emulator/stats").json()["total"]) for name, url in urls.items()
    }
    document = json.loads((Path(result.export_dir) / "export.json").read_text())
    return {
        "answer": hashlib.sha256(
            json.dumps(document["records"], sort_keys=True).encode()
        ).hexdigest(),
        "wall_s": wall,
        "rounds": result.expansion_rounds,
        "requests": requests,
        "statements": sum(n for db, n in sent.items() if db.endswith("onprem.db")),
        "records": result.total_records,
    }


def every_source_every_round(
    config: Config, mappings: dict[str, BaseMapping], subject: Subject, label: str = "discover"
) -> Discovery:
    """Discovery as it was before issue 18: every source again, with every identifier, in
    each round while new identifiers turn up; the last round's records are the answer."""
    from flows.discovery import MAX_EXPANSION_ROUNDS, ExpansionError
    from flows.discovery import found_identifiers as found_in
    from flows.tasks import discover_source

    for number in range(1, MAX_EXPANSION_ROUNDS + 1):
        futures = [
            discover_source.with_options(task_run_name=f"{label}-{name}-{number}").submit(
                name, config, mappings[name], subject
            )
            for name in config.sources
        ]
        found = {name: f.result() for name, f in zip(config.sources, futures, strict=True)}
        records = [r for result in found.values() for r in result.records]
        expanded = subject.expanded(found_in(records))
        if expanded == subject:
            from flows.discovery import Discovery

            gaps = {name: r.not_searched for name, r in found.items() if r.not_searched}
            return Discovery(records, subject, number, gaps)
        subject = expanded
    raise ExpansionError("identities kept growing")


if __name__ == "__main__":
    sys.exit(main())

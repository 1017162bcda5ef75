"""Jira benchmark: discovery of the demo subject in the large service desk, timed and counted,
with Jira Cloud's rate limits on.

The large sandbox profile (50,000 requests, 3 comments each; the demo subject in about 20 of
them) is served by the emulator with 20 ms added to every request and its rate limits enabled
(``sandbox/emulators/jira/ratelimit.py``: a burst bucket per endpoint, a cost budget of 1 point
per request + 1 per object returned; the figures are the emulator's, Atlassian publishes none);
the real ``jira`` client talks to it over HTTP. Each run opens a new connector, as each discovery
round and each request does: the first run reads the site's serverInfo, fields and service desks
(nothing cached); the second stands for the next ``dsr`` command, a new process with nothing in
memory that finds them in the owner-only ``site_facts_file``; later runs find them cached for the
process (warm) (``connectors/jira/sitecache.py``).

Measured: wall time of ``discover`` (median of the warm runs, and the cold one), and the HTTP
requests it made (counted by the emulator, per route) against the lower bound for one subject:

    one user search per address spelling + one customer look-up per service desk and spelling
    + ceil(hits / page size) search pages + comment pages only where a result lacks comments

Nothing else is about the subject; serverInfo, field and the desk list are about the site, and
are read once per ``metadata_cache_s`` (10 minutes by default) for every process and command
with the same ``site_facts_file``: the run with nothing cached counts them (6 for a bound of 3,
2.0x, with no target: a site's first command in ten minutes cannot skip them). Targets
(issue 18): requests <= 1.2x the lower bound (warm, and the next command); discovery <= 2 s.

    python -m benchmarks.jira_access [--issues 50000] [--latency-ms 20] [--runs 3] [--json]
        [--no-rate-limit]

Measured here (2026-12-06, this container: 2 CPUs shared with other jobs, load average ~20;
defaults: 50,000 issues, 20 ms, rate limits on): warm 3 requests for a lower bound of 3 (1.00x;
main made 6 = 2.00x: serverInfo, field and the desk list every time), cold 6; discovery 2.0 s
warm and cold (the emulator's search over 50,000 issues is CPU-bound on a loaded machine; 0.2 s
at 5,000 issues); no 429 (one subject stays far inside the emulator's budgets).

Issue 18, the cold figure (``--json --issues 5000 --runs 1``, 2026-12-06): main counted the
first connector of each process, 6 for 3 (2.00x) on every command, as a ``dsr`` command is a
process. Which 3 were extra (the emulator's stats by route): ``GET serverInfo``, ``GET field``,
``GET servicedesk``; none is about the subject, so they are kept in a file between commands
(owner-only, no URL, account or person in it). Measured with ``--issues 5000 --runs 3``, twice:
the next command 3 requests (1.00x) in 0.21 / 0.30 s against 6 in 0.32 / 0.47 s with nothing
cached (20 ms per request here; a real site's round trip is longer, so each command saves
more). Users and customers are personal data and are read by every command.

The emulator builds its word index for ``text ~`` on the first search; the benchmark makes
that search once before timing, as a real site's index is built before anyone asks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.figures import figure
from connectors.jira import sitecache
from connectors.jira.connector import JiraConnector
from connectors.jira.mapping import JiraMapping
from connectors.jira.settings import JiraSource
from dsrflow.identifiers import email_spellings
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox import jira_seed
from sandbox.emulators.faults import Faults, FaultSettings
from sandbox.emulators.jira import JiraEmulator, JiraStore, jql
from sandbox.emulators.jira.ratelimit import JiraRateLimit
from sandbox.emulators.server import EmulatorServer
from sandbox.onprem_seed import DEMO_SUBJECT

REPO = Path(__file__).resolve().parents[1]
TARGET_DISCOVERY_S = 2.0
TARGET_REQUEST_RATIO = 1.2
TOKEN_ENV = "DSRFLOW_BENCH_JIRA_TOKEN"  # noqa: S105 - a variable name, not a secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("--no-rate-limit", action="store_true", help="the emulator's limits off")
    args = parser.parse_args(argv)
    say = (lambda *_: None) if args.json else print

    started = time.perf_counter()
    store = JiraStore()
    counts = jira_seed.generate_large(store, requests=args.issues)
    say(f"seeded {counts} in {time.perf_counter() - started:.1f} s")
    store.search(jql.parse('text ~ "warm"'))  # the word index, built once

    os.environ[TOKEN_ENV] = jira_seed.SANDBOX_TOKEN
    faults = Faults(FaultSettings(latency_ms=args.latency_ms))
    limits = JiraRateLimit(enabled=not args.no_rate_limit)
    mapping = load_mapping(REPO / "mappings" / "jira.yaml")
    assert isinstance(mapping, JiraMapping)
    subject = Subject.from_raw([DEMO_SUBJECT])
    emulator = JiraEmulator(store, faults, rate_limit=limits)
    state = tempfile.TemporaryDirectory(prefix="dsrflow-bench-jira-")
    with state, EmulatorServer(emulator.app, name="jira") as url:
        source = JiraSource(
            kind="jira",
            mapping=REPO / "mappings" / "jira.yaml",
            url=url,
            email=jira_seed.SANDBOX_EMAIL,
            api_token={"env": TOKEN_ENV},
            site_facts_file=Path(state.name) / "jira-site-facts.json",
        )
        runs: list[dict[str, Any]] = []
        for number in range(args.runs + 2):
            if number < 2:
                # Run 0: nothing cached anywhere. Run 1: the next command, a new process
                # whose memory holds nothing but which finds the site's facts on file.
                sitecache.forget_all()
            httpx.post(f"{url}/_emulator/reset-stats").raise_for_status()
            began = time.perf_counter()
            connector = JiraConnector("jira", mapping, source)
            records = list(connector.discover(subject))
            elapsed = time.perf_counter() - began
            connector.close()
            routes = httpx.get(f"{url}/_emulator/stats").json()["requests"]
            runs.append(
                {
                    "seconds": elapsed,
                    "routes": routes,
                    "records": records,
                    "hits": connector.stats.issues_seen,
                    "comment_pages": connector.stats.comment_pages,
                }
            )
        refused = httpx.get(f"{url}/_emulator/rate-limit").json()["refused"]
    cold, on_file, warm = runs[0], runs[1], runs[2:] or runs[1:2]
    spellings = len({s for e in subject.emails for s in email_spellings(e, decomposed=True)})
    desks = len(store.servicedesks)
    last = warm[-1]
    search_pages = -(-last["hits"] // source.page_size) or 1
    bound = spellings + desks * spellings + search_pages + last["comment_pages"]
    made = sum(last["routes"].values())
    made_cold = sum(cold["routes"].values())
    made_on_file = sum(on_file["routes"].values())
    median = statistics.median(r["seconds"] for r in warm)
    figures = [
        figure("jira requests / lower bound (warm)", made, "requests", bound, TARGET_REQUEST_RATIO),
        figure(
            "jira requests / lower bound (next command, site facts on file)",
            made_on_file,
            "requests",
            bound,
            TARGET_REQUEST_RATIO,
        ),
        figure("jira requests / lower bound (nothing cached)", made_cold, "requests", bound, None),
        figure("jira discovery, rate limits on (warm)", median, "s", TARGET_DISCOVERY_S, 1.0),
        figure(
            "jira discovery, rate limits on (cold)", cold["seconds"], "s", TARGET_DISCOVERY_S, 1.0
        ),
    ]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        issues = {r.native_id.get("key") for r in last["records"] if r.location == "issues"}
        say(f"records: {len(last['records'])} ({len(issues)} issues); search hits {last['hits']}")
        say(
            f"discovery: warm median {median:.2f} s, next command {on_file['seconds']:.2f} s, "
            f"nothing cached {cold['seconds']:.2f} s"
        )
        say(
            f"requests: warm {made}, next command {made_on_file}, nothing cached {made_cold}, "
            f"lower bound {bound}; 429s {refused}"
        )
        for route, n in sorted(last["routes"].items()):
            say(f"  {n:4d}  {route}")
    ok = median <= TARGET_DISCOVERY_S and max(made, made_on_file) <= TARGET_REQUEST_RATIO * bound
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

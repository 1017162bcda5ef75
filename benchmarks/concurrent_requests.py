"""Benchmark: many access requests at once through the officer's stack (issue 18, "Beyond one
machine").

Starts the stack (``dsrflow.stack.up``: Prefect server, sandbox with every emulator, the
deployments) with ``--workers`` process workers on the ``dsrflow`` pool, then:

1. picks ``--requests`` sandbox subjects (the demo subject, her look-alikes, then the
   generated contacts of the on-prem database, in id order);
2. answers each once in this process, one at a time, with the default task runner: the
   reference export of that subject, and the anchor (requests per minute one at a time);
3. submits every request at once through the ``access-request`` deployment
   (``run_deployment(..., timeout=0)``, parameters: the request id and the subject's address
   only), waits for all of them, and reports throughput (requests per minute from the first
   submission to the last run's end), the p50/p95 of the runs' durations (start to end, as
   Prefect records them) and of submission-to-end latency;
4. checks every export: its records, for each source, exactly the reference's for that subject
   (a run that answered another subject's data, or a partial one, is counted as not exact).

The stack's Prefect server keeps its database in PostgreSQL here (``--prefect-db postgres``,
the default: a throwaway server from tests/support/postgres.py, as README "Running at scale"
advises for more than one officer): on the stack's default SQLite, 20 runs at once made the
server answer 503 ("database is locked") to a worker, which then reported the run crashed
(``--prefect-db sqlite`` shows it).

The workers poll for runs every 2 s (``PREFECT_WORKER_QUERY_SECONDS``, 10 s by default), as the
stack's tests do; each flow run is a fresh Python process (imports included in its duration).
``--limit N`` sets the pool's concurrency limit (none by default: all runs at once).

    python -m benchmarks.concurrent_requests
    python -m benchmarks.concurrent_requests --requests 6 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from benchmarks.figures import figure

DEPLOYMENT = "access-request/access-request"
WAIT_S = 1800.0


@dataclass(frozen=True)
class Finished:
    request_id: str
    state: str
    duration_s: float  # start to end of the flow run
    latency_s: float  # submission to end


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sandbox_subjects(config_path: Path, count: int) -> list[str]:
    """``count`` addresses of the sandbox: the demo subject and her look-alikes (they have
    mail, Drive and Jira records too), then on-prem contacts in id order."""
    from dsrflow.config import load_config
    from sandbox.onprem_seed import DEMO_SUBJECT, LOOK_ALIKES

    chosen = [DEMO_SUBJECT, *LOOK_ALIKES][:count]
    source = load_config(config_path).sources["onprem"]
    engine = sa.create_engine(str(getattr(source, "url", None) or source.model_dump()["url"]))
    with engine.connect() as conn:
        for (email,) in conn.execute(sa.text("SELECT email FROM contacts ORDER BY id")):
            if len(chosen) >= count:
                break
            if email.lower() not in chosen:
                chosen.append(email.lower())
    engine.dispose()
    if len(chosen) < count:
        raise SystemExit(f"the sandbox has only {len(chosen)} subjects; ask for fewer")
    return chosen


def export_records(config_path: Path, request_id: str) -> dict[str, Any]:
    """The records of the export the ledger says the request wrote."""
    from dsrflow.config import load_config
    from dsrflow.ledger import Ledger

    ledger = Ledger.from_config(load_config(config_path))
    try:
        exported = [e.details for e in ledger.entries(request_id) if e.event == "exported"]
    finally:
        ledger.close()
    if len(exported) != 1:
        return {"missing": f"{len(exported)} exports in the ledger"}
    document = json.loads((Path(exported[0]["export_dir"]) / "export.json").read_text())
    return {"total_records": document["total_records"], "records": document["records"]}


def references(subjects: list[str], config_path: Path) -> tuple[list[dict[str, Any]], list[float]]:
    """Each subject answered in this process, one at a time: (exports, seconds each)."""
    from flows.access import access_request

    exports, seconds = [], []
    for number, subject in enumerate(subjects, start=1):
        request_id = f"DSR-2026-{81_000_000 + number}"
        started = time.perf_counter()
        state = access_request(request_id=request_id, subject_emails=[subject], return_state=True)
        seconds.append(time.perf_counter() - started)
        if not state.is_completed():
            raise SystemExit(f"reference request {request_id} ended {state.type.value}")
        exports.append(export_records(config_path, request_id))
    return exports, seconds


def submit_all(subjects: list[str]) -> tuple[dict[UUID, str], float]:
    """Every request through the deployment at once; (flow run id -> request id, when)."""
    from prefect.deployments import run_deployment

    started = time.time()
    runs = {}
    for number, subject in enumerate(subjects, start=1):
        request_id = f"DSR-2026-{82_000_000 + number}"
        run = run_deployment(
            DEPLOYMENT,
            parameters={"request_id": request_id, "subject_emails": [subject]},
            timeout=0,
        )
        runs[run.id] = request_id  # type: ignore[union-attr]
    return runs, started


def wait_for(runs: dict[UUID, str], submitted: float) -> list[Finished]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + WAIT_S
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs))),
                limit=len(runs),
            )
            if len(found) == len(runs) and all(r.state and r.state.is_final() for r in found):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the runs did not finish within {WAIT_S:.0f} s")
            time.sleep(1)
    return [
        Finished(
            request_id=runs[r.id],
            state=r.state.type.value if r.state else "unknown",
            duration_s=(r.end_time - r.start_time).total_seconds()
            if r.end_time and r.start_time
            else float("nan"),
            latency_s=r.end_time.timestamp() - submitted if r.end_time else float("nan"),
        )
        for r in found
    ]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(fraction * 100) - 1]


def figures(
    count: int, finished: list[Finished], exact: int, submitted: float, reference_s: list[float]
) -> list[dict[str, Any]]:
    last_end = max(f.latency_s for f in finished)
    throughput = count / last_end * 60
    one_at_a_time = count / sum(reference_s) * 60
    durations = [f.duration_s for f in finished]
    latencies = [f.latency_s for f in finished]
    reference_p50 = statistics.median(reference_s)
    return [
        figure(
            f"{count} requests at once / one at a time in-process",
            throughput,
            "requests/min",
            one_at_a_time,
            None,
        ),
        figure(
            "run duration p50 / one request in-process",
            percentile(durations, 0.5),
            "s",
            reference_p50,
            None,
        ),
        figure("run duration p95", percentile(durations, 0.95), "s", None, None),
        figure("submission to end p50", percentile(latencies, 0.5), "s", None, None),
        figure("submission to end p95", percentile(latencies, 0.95), "s", None, None),
        figure("exports exact / requests", exact, "exports", count, ">= 1"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.concurrent_requests", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=20, help="requests submitted at once")
    parser.add_argument("--workers", type=int, default=2, help="process workers on the pool")
    parser.add_argument("--limit", type=int, default=0, help="pool concurrency limit (0: none)")
    parser.add_argument(
        "--prefect-db",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="the Prefect server's database (default: a throwaway PostgreSQL server)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.workers < 1:
        parser.error("--requests and --workers must be at least 1")
    # Before anything imports prefect: a private Prefect home, no telemetry, fast polling.
    base = Path(tempfile.mkdtemp(prefix="dsrflow-concurrent-"))
    os.environ.update(
        {
            "PREFECT_HOME": str(base / "prefect-client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
        }
    )
    os.environ.pop("PREFECT_API_URL", None)
    with ExitStack() as cleanup:
        # The sandbox's (made-up) people, the exports and Prefect's home go with the run.
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        if args.prefect_db == "postgres":
            from tests.support.postgres import PostgresServer

            server = cleanup.enter_context(PostgresServer())
            url = server.create_database("prefect").replace("+psycopg", "+asyncpg", 1)
            # The stack's processes copy this environment: the Prefect server reads it.
            os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = url
        return run(args, base)


def run(args: argparse.Namespace, base: Path) -> int:
    from dsrflow import stack

    directory = base / "stack"
    log = print if not args.json else (lambda *a: print(*a, file=sys.stderr))
    log(f"starting the stack in {directory} with {args.workers} worker(s) ...")
    started = stack.up(directory, port=free_port(), workers=args.workers)
    try:
        os.environ["DSRFLOW_CONFIG"] = str(started.config_path)
        with stack.connected(directory):
            if args.limit:
                subprocess.run(  # noqa: S603 - our own executable, fixed arguments
                    [
                        str(stack.BIN / "prefect"),
                        "work-pool",
                        "set-concurrency-limit",
                        "dsrflow",
                        str(args.limit),
                    ],
                    env={**os.environ, **stack.client_environment(directory)},
                    check=True,
                    capture_output=True,
                )
            subjects = sandbox_subjects(started.config_path, args.requests)
            log(f"{len(subjects)} reference requests, one at a time ...")
            expected, reference_s = references(subjects, started.config_path)
            log(f"{len(subjects)} requests through {DEPLOYMENT} at once ...")
            runs, submitted = submit_all(subjects)
            finished = wait_for(runs, submitted)
        by_request = {f.request_id: f for f in finished}
        exact = 0
        for number, want in enumerate(expected, start=1):
            request_id = f"DSR-2026-{82_000_000 + number}"
            state = by_request[request_id].state
            got = export_records(started.config_path, request_id) if state == "COMPLETED" else {}
            if got == want:
                exact += 1
            else:
                log(f"{request_id}: {state}, export differs from the reference")
    finally:
        stack.down(directory)
    result = figures(args.requests, finished, exact, submitted, reference_s)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for f in result:
            anchor = f" (anchor {f['anchor']}, ratio {f['ratio']})" if f["anchor"] else ""
            print(f"{f['name']}: {f['figure']} {f['unit']}{anchor}")
    return 0 if exact == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())

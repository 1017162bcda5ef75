"""Drive benchmark: discovery of the demo subject in the large Drive, timed, counted, measured.

The large sandbox profile (200 spreadsheets x 2,000 rows in 10 folders; the demo subject in
every tenth spreadsheet, a look-alike in every fifth) is served by the Drive + Sheets emulator
with 20 ms added to every request. The emulator runs in a child process, so that the memory
measured is that of the process doing the discovery (as the flow's would be), not the
emulator's 400,000 rows. The real google-api-python-client talks to it over HTTP, with a
service-account JWT traded at the emulator's ``/token``.

Measured: wall time of ``discover`` (median of the runs); the requests per route (counted by
the emulator); peak RSS of this process (``ru_maxrss``).
Targets (issue 4): discovery <= 5 s; at most one values request per spreadsheet plus the folder
listing pages; peak RSS <= 300 MB.

    python -m benchmarks.drive_access [--spreadsheets 200] [--rows 2000] [--latency-ms 20]
                                      [--workers 8] [--runs 3]

The emulator builds its full-text index on the first ``fullText contains`` query; the benchmark
makes that query once before timing, as Drive's index exists before anyone asks.

Measured 2026-11-22 on the shared development container (2 vCPU, other jobs running), with
the defaults (200 x 2,000 rows, 20 ms, 8 workers, 3 runs):

    discovery: median 3.32 s (runs 3.32, 3.31, 3.37); under heavier load up to 3.6-4.1 s
    CPU during discovery: this process 1.2-1.5 s, the emulator 1.7-2.2 s
    requests: 200 values.batchGet (one per spreadsheet), 200 spreadsheets.get (sheet titles),
              2 files.list (the folder listing, 1 page; the full-text search, 1 page)
    peak RSS of this process: 161 MB after one run, 221 MB after three (80 MB before the
              first discovery: imports and the two discovery documents)

With 2 workers the same discovery takes ~7.5 s: the 20 ms per request is what the worker pool
hides. The emulator's own CPU (JSON of 2,000-row value ranges) is about half of the total.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import psutil

from connectors.drive.connector import DriveConnector
from connectors.drive.mapping import DriveMapping
from connectors.drive.settings import DriveSource
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox.onprem_seed import DEMO_SUBJECT

TARGET_DISCOVERY_S = 5.0
TARGET_RSS_MB = 300


def serve(args: argparse.Namespace, directory: str, pipe: Connection) -> None:
    """The child process: seed the large Drive, serve it, say where, run until told to stop."""
    from sandbox import drive_seed
    from sandbox.drive_part import DELEGATED_USER, mapping_for_loaded, write_service_account
    from sandbox.emulators.faults import Faults, FaultSettings
    from sandbox.emulators.google import GoogleState, create_app
    from sandbox.emulators.server import EmulatorServer

    began = time.perf_counter()
    state = GoogleState()
    counts = drive_seed.generate_large(state, spreadsheets=args.spreadsheets, rows=args.rows)
    drive_seed.grant(state, DELEGATED_USER)
    seeded = time.perf_counter() - began
    for file in state.files.values():
        file.full_text()  # the full-text index, built once
    mapping = mapping_for_loaded(state, Path(directory) / "drive-mapping.yaml")
    faults = Faults(FaultSettings(latency_ms=args.latency_ms))
    with EmulatorServer(create_app(state, faults), name="google") as url:
        key = write_service_account(state, url, Path(directory) / "key.json")
        pipe.send((url, str(key), str(mapping), DELEGATED_USER, counts, seeded))
        pipe.recv()  # until the parent is done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spreadsheets", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="dsrflow-drive-bench-")
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(args, directory, theirs), daemon=True
    )
    child.start()
    url, key, mapping_path, user, counts, seeded = ours.recv()
    print(f"seeded {counts} in {seeded:.1f} s (emulator process)")
    try:
        source = DriveSource(
            kind="drive",
            mapping=Path(mapping_path),
            credentials_file=Path(key),
            delegated_user=user,
            api_url=url,
            workers=args.workers,
        )
        mapping = load_mapping(source.mapping)
        assert isinstance(mapping, DriveMapping)
        subject = Subject.from_raw([DEMO_SUBJECT])
        emulator = psutil.Process(child.pid)
        before_mb = psutil.Process().memory_info().rss / 2**20
        timings, cpu, emulator_cpu, records, requests = [], [], [], [], {}
        for _ in range(args.runs):
            httpx.post(f"{url}/_emulator/reset-stats").raise_for_status()
            began, began_cpu = time.perf_counter(), time.process_time()
            emulator_began = sum(emulator.cpu_times()[:2])
            connector = DriveConnector("drive", mapping, source)
            records = list(connector.discover(subject))
            timings.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
            emulator_cpu.append(sum(emulator.cpu_times()[:2]) - emulator_began)
            connector.close()
            requests = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    finally:
        ours.send("stop")
        child.join(timeout=10)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spreadsheets = connector.stats.spreadsheets
    values = requests.get("values.batchGet", 0)
    pages = requests.get("files.list", 0)
    median = statistics.median(timings)
    print(f"records: {len(records)} in {spreadsheets} spreadsheets, {connector.stats.rows} rows")
    print(
        f"discovery: median {median:.2f} s over {args.runs} run(s) "
        f"(target <= {TARGET_DISCOVERY_S} s), runs {[round(t, 2) for t in timings]}"
    )
    print(
        f"CPU time during discovery (median): this process {statistics.median(cpu):.2f} s, "
        f"the emulator {statistics.median(emulator_cpu):.2f} s; {os.cpu_count()} CPU(s)"
    )
    print(
        f"values requests: {values} for {spreadsheets} spreadsheets (target <= 1 each); "
        f"files.list pages: {pages}"
    )
    for route, n in sorted(requests.items()):
        print(f"  {n:4d}  {route}")
    print(
        f"peak RSS of this process: {peak_mb:.0f} MB (target <= {TARGET_RSS_MB} MB); "
        f"{before_mb:.0f} MB before the first discovery (imports, discovery documents)"
    )
    ok = median <= TARGET_DISCOVERY_S and values <= spreadsheets and peak_mb <= TARGET_RSS_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

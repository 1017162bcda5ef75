"""``dsr demo``, warm: the officer's second run in a row, the local Prefect server already running
(issue 18: target <= 5 s).

Runs ``dsr demo --dir DIR`` once to warm up (it seeds the sandbox and starts the Prefect server
of ``DIR/prefect``, which later commands find and use), then ``--runs`` more times, each in a
child process as the officer runs it, and measures each run's wall time from start to exit and
the CPU time (user + system) the command spent. Every run must end with exit status 0 and an
export of the demo subject's 63 records (``DIR/exports/DSR-2026-0001/export.json``), or the
benchmark fails: a faster command that answers differently is no figure. The server is stopped
at the end (``dsr server stop``); the folder is a temporary one unless ``--dir`` is given.

The commands run without the caller's ``PREFECT_*`` and ``DSRFLOW_*`` settings, as a newcomer's
would (tests/test_first_run.py). The load average is printed with the runs: on the shared 2-core
development machine other sessions' work slows every run, so compare figures measured at
similar load, or the CPU figure.

    python -m benchmarks.demo_warm [--runs 5] [--dir DIR] [--json]

Figures (``--json``, in the shape benchmarks/run_all.py collects): the median wall time (target
<= 5 s), the median CPU time, and the runs whose export held the 63 records (target: all).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.figures import figure, print_figures

DSR = Path(sys.executable).parent / "dsr"
TARGET_S = 5.0
DEMO_RECORDS = 63  # the demo subject's records in the generated sandbox (README: make demo)


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DSRFLOW_"))}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demo(box: Path) -> dict[str, Any]:
    """One ``dsr demo``: wall and CPU seconds, and the records its export holds."""
    export = box / "exports" / "DSR-2026-0001" / "export.json"
    export.unlink(missing_ok=True)  # a run that writes none must not count an older one
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own executable, fixed arguments
        [str(DSR), "demo", "--dir", str(box)],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dsr demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    records = json.loads(export.read_text(encoding="utf-8"))["total_records"]
    return {"wall_s": wall, "cpu_s": children_cpu() - cpu, "records": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs after the warm-up")
    parser.add_argument("--dir", type=Path, default=None, help="sandbox folder (default: temp)")
    parser.add_argument("--json", action="store_true", help="print the make-bench figures")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    out_stream = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out_stream, flush=True)

    box = (args.dir or Path(tempfile.mkdtemp(prefix="dsrflow-demo-warm-"))).resolve()
    runs: list[dict[str, Any]] = []
    try:
        warm = run_demo(box)
        say(f"warm-up (seeds, starts the server): {warm['wall_s']:.2f} s")
        for number in range(1, args.runs + 1):
            result = run_demo(box)
            runs.append(result)
            load = os.getloadavg()[0]
            say(
                f"run {number}: {result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} s CPU, "
                f"{result['records']} records (load average {load:.1f})"
            )
    finally:
        subprocess.run(  # noqa: S603 - our own executable, fixed arguments
            [str(DSR), "server", "stop", "--config", str(box / "dsrflow.yaml")],
            env=environment(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if args.dir is None:
            shutil.rmtree(box, ignore_errors=True)
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    exact = sum(1 for r in runs if r["records"] == DEMO_RECORDS)
    exports = figure(
        f"exports with the demo's {DEMO_RECORDS} records", exact, "runs", len(runs), None
    )
    found = [
        figure(f"dsr demo, warm (median of {len(runs)})", wall, "s", TARGET_S, 1.0),
        figure("dsr demo, warm, CPU user + system (median)", cpu, "s", 0, None),
        {**exports, "target": ">= 1"},  # every run
    ]
    print_figures(found, args.json, say)
    return 0


if __name__ == "__main__":
    sys.exit(main())

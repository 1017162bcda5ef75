"""``make bench``: run every benchmark, one after the other, outside the test suite, and collect
their figures into ``benchmarks/results/summary.md`` and ``summary.json``; then write the
summary's table into README.md between its bench markers.

Each benchmark is one entry of ``BENCHMARKS``: the module, its arguments for the full and the
``--quick`` profile, and the large database it needs (built once under ``.sandbox/`` by
``sandbox.large`` when missing; on PostgreSQL, see below). Every benchmark is run as
``python -m benchmarks.NAME --json ARGS`` in a process of its own and prints a JSON list of
figures, each ``{"name", "figure", "unit", "anchor", "ratio", "target"}``:

- ``figure``: what was measured, in ``unit``;
- ``anchor``: what it is compared with (a baseline, a lower bound), or null;
- ``ratio``: figure / anchor, or null;
- ``target``: ``"<= X"`` or ``">= X"`` on the ratio (on the figure when there is no ratio),
  or null for a figure shown without a target.

A benchmark that fails, is missing, or prints no such JSON gets a row saying so; the others
still run. Each one's full output goes to ``benchmarks/results/NAME.log``.

    python -m benchmarks.run_all            # everything, full sizes (about 15-20 min, 2 cores)
    python -m benchmarks.run_all --quick    # small sizes (a few minutes)
    python -m benchmarks.run_all --only jira_access   # again, into the last summary
    python -m benchmarks.run_all --readme-only   # the README table from the last summary

A benchmark on PostgreSQL needs a server: ``--postgres URL`` or ``DSRFLOW_BENCH_POSTGRES=URL``
(a database the user can connect to and create databases from, e.g. ``postgres``). There the
large profile is built once as its own database (``dsrflow_large_3m``, ...). Without a URL
such a benchmark is skipped, with one line saying so, and does not fail ``make bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import operator
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
README_START = "<!-- bench:start (written by python -m benchmarks.run_all) -->"
README_END = "<!-- bench:end -->"
FIGURE_KEYS = ("name", "figure", "unit", "anchor", "ratio", "target")
POSTGRES_ENV = "DSRFLOW_BENCH_POSTGRES"
NO_POSTGRES = f"skipped: no PostgreSQL server (set {POSTGRES_ENV}=URL or pass --postgres URL)"


@dataclass(frozen=True)
class Benchmark:
    module: str  # benchmarks/<module>.py
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    # ``{db}`` in the arguments is replaced by the large database of this many events: a
    # SQLite file, or with ``postgres`` the URL of a database on the --postgres server.
    database_events: dict[str, int] = field(default_factory=dict)  # profile -> events
    adapt: Callable[[Any], list[dict[str, Any]]] | None = None  # JSON of another shape
    timeout: float | None = None  # seconds, instead of --timeout
    postgres: bool = False  # needs the --postgres server; skipped without one
    label: str = ""  # its name in the summary (default: the module), when a module runs twice

    @property
    def name(self) -> str:
        return self.label or self.module

    def arguments(self, profile: str, database: Path | str | None) -> list[str]:
        args = self.quick if profile == "quick" else self.full
        return [a.replace("{db}", str(database)) if database else a for a in args]


def onprem_figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """benchmarks/onprem_access.py's own ``--json`` report, as figures."""
    total = report["total"]
    targets = report["targets"]
    return [
        {
            "name": "on-prem discovery, cold (subject with 50 rows)",
            "figure": round(total["cold_s"], 3),
            "unit": "s",
            "anchor": None,
            "ratio": None,
            "target": f"<= {targets['discovery_s']}",
        },
        {
            "name": "on-prem discovery, warm median",
            "figure": round(total["median_s"], 4),
            "unit": "s",
            "anchor": None,
            "ratio": None,
            "target": None,
        },
        {
            "name": "on-prem discovery, SQL statements",
            "figure": total["queries"],
            "unit": "queries",
            "anchor": None,
            "ratio": None,
            "target": None,
        },
        {
            "name": "on-prem discovery, peak RSS",
            "figure": report["peak_rss_mb"],
            "unit": "MB",
            "anchor": None,
            "ratio": None,
            "target": f"<= {targets['peak_rss_mb']}",
        },
    ]


# One entry per benchmark: a new benchmark is one more line here.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "onprem_access",
        full=("--url", "sqlite:///{db}", "--repeat", "5"),
        quick=("--url", "sqlite:///{db}", "--repeat", "3"),
        database_events={"full": 10_000_000, "quick": 1_000_000},
        adapt=onprem_figures,
    ),
    Benchmark(
        "retention_sweep",
        full=("--sqlite", "{db}", "--repeat", "2"),
        quick=("--sqlite", "{db}", "--repeat", "2"),
        database_events={"full": 10_000_000, "quick": 1_000_000},
        timeout=1800,  # four runs over 10 M events (~1 min each, several on a busy machine)
    ),
    Benchmark(
        "retention_sweep",
        label="retention_sweep_postgres",
        full=("--postgres", "{db}", "--repeat", "3"),
        quick=("--postgres", "{db}", "--repeat", "3"),
        # Issue 18's two sizes; building 10 M takes about 2 min, each pair 30-60 s.
        database_events={"full": 10_000_000, "quick": 3_000_000},
        postgres=True,
        timeout=1800,
    ),
    Benchmark(
        "mail_access",
        quick=("--mailboxes", "5", "--per-mailbox", "2000", "--erase", "100", "--runs", "1"),
    ),
    Benchmark("drive_access", quick=("--spreadsheets", "20", "--rows", "500", "--runs", "1")),
    Benchmark("jira_access", quick=("--issues", "5000", "--runs", "1")),
    # Builds its own PostgreSQL database from ../shared/peer/fides/large (about a minute).
    Benchmark("fides_access", quick=("--runs", "5", "--flow-runs", "3")),
    Benchmark("access_rounds", quick=("--runs", "1")),
    Benchmark("concurrent_requests", quick=("--requests", "6")),
    # Builds the large sandbox (3-4 min), then 14 requests per run: 1800 s is not too much.
    Benchmark("access_large", quick=("--profile", "small", "--runs", "1"), timeout=1800),
    Benchmark("demo_warm", full=("--runs", "5"), quick=("--runs", "3")),
)


def present(benchmark: Benchmark) -> bool:
    return importlib.util.find_spec(f"benchmarks.{benchmark.module}") is not None


def large_database(events: int) -> Path:
    """The large on-prem SQLite profile with ``events`` usage events, built when missing."""
    path = REPO / ".sandbox" / f"large-{events // 1_000_000}m.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)  # an interrupted build leaves a broken file
        subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "sandbox.large", "--out", str(partial), "--events", str(events)],
            cwd=REPO,
            check=True,
        )
        partial.rename(path)
    return path


def large_postgres(server: str, events: int, extra: Sequence[str] = ()) -> str:
    """The URL of the large on-prem profile with ``events`` usage events, a database of its
    own on the PostgreSQL server ``server`` reaches, built when missing (``extra``: more
    ``sandbox.large`` arguments). It is built under another name and renamed when complete,
    so an interrupted build is never taken for a finished one."""
    import sqlalchemy as sa  # here: the runner itself needs only the standard library

    millions, rest = divmod(events, 1_000_000)
    name = f"dsrflow_large_{millions}m" if not rest else f"dsrflow_large_{events}"
    building = f"{name}_building"
    url = sa.make_url(server)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            known = "SELECT 1 FROM pg_database WHERE datname = :name"
            if conn.execute(sa.text(known), {"name": name}).first() is None:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{building}"'))
                conn.execute(sa.text(f'CREATE DATABASE "{building}"'))
                target = url.set(database=building).render_as_string(hide_password=False)
                build = ["sandbox.large", "--url", target, "--events", str(events), *extra]
                subprocess.run(  # noqa: S603 - our own module, fixed arguments
                    [sys.executable, "-m", *build],
                    cwd=REPO,
                    check=True,
                )
                conn.execute(sa.text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _shown(command: list[str], postgres: str | None = None) -> str:
    """The command as the summary shows it: repository paths relative, no password."""
    text = " ".join(["python", *command[1:]]).replace(str(REPO) + "/", "")
    if postgres:
        import sqlalchemy as sa

        text = text.replace(postgres, sa.make_url(postgres).render_as_string(hide_password=True))
    return text


def figures_from(output: str, adapt: Callable[[Any], list[dict[str, Any]]] | None) -> list[dict]:
    """The figures a benchmark printed: the last JSON value of its output (logs may precede
    it). Raises ValueError when there is none or it has the wrong shape."""
    start = max(output.rfind("\n["), output.rfind("\n{"))
    text = output[start + 1 :] if start >= 0 else output
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"no JSON figures in its output ({exc.msg})") from exc
    figures = adapt(value) if adapt else value
    if not isinstance(figures, list) or not figures:
        raise ValueError("its JSON is not a list of figures")
    for figure in figures:
        if not isinstance(figure, dict) or set(FIGURE_KEYS) - set(figure):
            raise ValueError(f"a figure lacks one of {', '.join(FIGURE_KEYS)}: {figure!r}")
    return figures


_COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def met(figure: dict[str, Any]) -> bool | None:
    """Whether the figure meets its target (None: no target, or nothing measured). A bare
    number is an upper bound: every such target here is a cost (a ratio to a bound, seconds,
    megabytes)."""
    target = figure.get("target")
    if target is None or target == "":
        return None
    if isinstance(target, int | float):
        target = f"<= {target}"
    match = re.fullmatch(r"\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*", str(target))
    if match is None:
        raise ValueError(f"target {target!r} is not '<= X' or '>= X'")
    value = figure["ratio"] if figure.get("ratio") is not None else figure.get("figure")
    if value is None:
        return None
    return _COMPARE[match.group(1)](float(value), float(match.group(2)))


def run_one(
    benchmark: Benchmark, profile: str, timeout: float, postgres: str | None = None
) -> dict[str, Any]:
    """Run one benchmark; its entry of the summary (figures, or why there are none)."""
    entry: dict[str, Any] = {"benchmark": benchmark.name, "figures": [], "problem": None}
    if not present(benchmark):
        entry["problem"] = entry["missing"] = "not in this checkout"
        return entry
    if benchmark.postgres and not postgres:
        entry["problem"] = entry["missing"] = NO_POSTGRES
        return entry
    events = benchmark.database_events.get(profile)
    database: Path | str | None = None
    if events and benchmark.postgres:
        assert postgres is not None  # checked above
        database = large_postgres(postgres, events)
    elif events:
        database = large_database(events)
    command = [
        sys.executable,
        "-m",
        f"benchmarks.{benchmark.module}",
        "--json",
        *benchmark.arguments(profile, database),
    ]
    entry["command"] = _shown(command, str(database) if benchmark.postgres else None)
    started = time.monotonic()
    log = RESULTS / f"{benchmark.name}.log"
    limit = benchmark.timeout or timeout
    # A session of its own: on timeout its children (a benchmark's measured processes, a
    # stack) are stopped with it, not left running behind the next benchmark.
    process = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        entry["problem"] = f"stopped after {limit:.0f} s"
        log.write_text(f"{stdout}\n--- stderr ---\n{stderr}")
        return entry
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    entry["seconds"] = round(time.monotonic() - started, 1)
    entry["exit_status"] = result.returncode
    log.write_text(f"$ {entry['command']}\n{result.stdout}\n--- stderr ---\n{result.stderr}")
    try:
        entry["figures"] = [
            {**figure, "met": met(figure)}
            for figure in figures_from(result.stdout, benchmark.adapt)
        ]
    except ValueError as exc:
        said = (result.stderr.strip().splitlines() or [""])[-1][:120]
        entry["problem"] = f"exit {result.returncode}: {exc}" + (
            f"; it said: {said}" if said else ""
        )
    return entry


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(summary: dict[str, Any]) -> str:
    """The summary as one Markdown table (the README's and summary.md's)."""
    lines = [
        "| benchmark | figure | measured | anchor | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    verdict = {True: "yes", False: "**no**", None: "—"}
    for entry in summary["benchmarks"]:
        if entry["problem"]:
            problem = entry["problem"].replace("|", "/")  # a cell of the table
            lines.append(f"| {entry['benchmark']} | — | {problem} | | | | — |")
            continue
        for figure in entry["figures"]:
            unit = figure.get("unit") or ""
            lines.append(
                f"| {entry['benchmark']} | {figure['name']} | {_number(figure['figure'])} {unit} "
                f"| {_number(figure['anchor'])} | {_number(figure['ratio'])} "
                f"| {figure['target'] or '—'} | {verdict[figure['met']]} |"
            )
    return "\n".join(lines)


def heading(summary: dict[str, Any]) -> str:
    return (
        f"Latest `make bench` ({summary['profile']} profile), {summary['finished']} on "
        f"{summary['machine']}, commit {summary['commit']}, {summary['seconds']:.0f} s in all."
    )


def markdown(summary: dict[str, Any]) -> str:
    commands = "\n".join(
        f"- `{e['benchmark']}`: `{e['command']}` ({e.get('seconds', '—')} s, exit "
        f"{e.get('exit_status', '—')})"
        for e in summary["benchmarks"]
        if e.get("command")
    )
    return f"# Benchmarks\n\n{heading(summary)}\n\n{table(summary)}\n\n{commands}\n"


def write_readme(summary: dict[str, Any], readme: Path = README) -> None:
    """Replace what stands between the README's bench markers with the summary's table."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme} has no '{README_START}' ... '{README_END}' markers")
    block = f"{README_START}\n{heading(summary)}\n\n{table(summary)}\n"
    readme.write_text(text[:start] + block + text[end:], encoding="utf-8")


def merged(summary: dict[str, Any], last: Path) -> dict[str, Any]:
    """``--only``: the last summary of the same profile with the benchmarks just run replaced
    (their time added); the new summary alone when there is none."""
    if not last.exists():
        return summary
    before = json.loads(last.read_text(encoding="utf-8"))
    if before.get("profile") != summary["profile"]:
        return summary
    fresh = {e["benchmark"]: e for e in summary["benchmarks"]}
    names = ", ".join(fresh)
    entries = [fresh.pop(e["benchmark"], e) for e in before["benchmarks"]]
    return {
        **summary,
        "seconds": before["seconds"] + summary["seconds"],
        "benchmarks": entries + list(fresh.values()),
        "commit": f"{before['commit']} (+ {names} at {summary['commit']})",
    }


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds one benchmark may take (900)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(POSTGRES_ENV) or None,
        help=f"URL of a PostgreSQL server for the benchmarks on it (default: ${POSTGRES_ENV})",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    parser.add_argument(
        "--readme-only", action="store_true", help="write README's table from the last summary"
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.readme_only:
        write_readme(json.loads((RESULTS / "summary.json").read_text(encoding="utf-8")))
        return 0
    known = {b.name for b in BENCHMARKS}
    if unknown := set(args.only) - known:
        parser.error(f"no benchmark {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    profile = "quick" if args.quick else "full"
    started = time.monotonic()
    entries = []
    for benchmark in chosen:
        print(f"bench: {benchmark.name} ...", flush=True)
        entry = run_one(benchmark, profile, args.timeout, args.postgres)
        print(f"bench: {benchmark.name}: {entry['problem'] or 'done'}", flush=True)
        entries.append(entry)
    summary = {
        "profile": profile,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs",
        "commit": _commit(),
        "seconds": round(time.monotonic() - started, 1),
        "benchmarks": entries,
    }
    if args.only:
        summary = merged(summary, RESULTS / "summary.json")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "summary.md").write_text(markdown(summary), encoding="utf-8")
    print(table(summary))
    if not args.no_readme:
        write_readme(summary)
    missed = [f for e in entries for f in e["figures"] if f["met"] is False]
    failed = [e for e in entries if e["problem"] and not e.get("missing")]
    return 1 if missed or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

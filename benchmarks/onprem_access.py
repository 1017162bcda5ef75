"""Access-request benchmark: discovery of one subject in the on-prem database, timed.

Runs in this process on purpose: peak RSS (``ru_maxrss``) is then the memory discovery needs,
which must follow the subject's footprint (about 50 rows), not the size of the database.

    python -m sandbox.large --out .sandbox/large-10m.db --events 10000000
    python -m benchmarks.onprem_access --url sqlite:///.sandbox/large-10m.db

Targets and measured figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from connectors.sql.connector import SqlConnector
from dsrflow.identifiers import mask_email
from dsrflow.mapping import load_mapping
from dsrflow.request import Subject
from sandbox.large import BENCH_SUBJECT

REPO = Path(__file__).resolve().parents[1]
ONPREM_MAPPING = REPO / "mappings" / "onprem.yaml"
# The targets of benchmarks/README.md, checked in the output.
TARGET_DISCOVERY_S = 1.0
TARGET_PEAK_RSS_MB = 300.0


@dataclass
class SourceResult:
    """One source's figures; times in seconds, one entry per discovery run."""

    source: str
    cold_s: float
    warm_s: list[float]
    queries: int
    records: int
    records_by_table: dict[str, int]
    setup_s: float
    rss_before_mb: float  # peak RSS once imported and connected: discovery's share is the rest
    rss_after_mb: float  # peak RSS of the process after this source's runs
    stable: bool = True  # same queries and records on every run
    notes: list[str] = field(default_factory=list)

    @property
    def best_s(self) -> float:
        return min(self.warm_s, default=self.cold_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.warm_s) if self.warm_s else self.cold_s

    def figures(self) -> dict[str, Any]:
        return {**asdict(self), "best_s": self.best_s, "median_s": self.median_s}


def peak_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def bench_onprem(url: str, subject: Subject, repeat: int, mapping: Path) -> SourceResult:
    """One cold discovery, then ``repeat`` warm ones, on one connector (as a flow would use it)."""
    started = time.perf_counter()
    connector = SqlConnector("onprem", load_mapping(mapping), url, mapping_path=mapping)
    setup_s = time.perf_counter() - started  # reflection of the tables: not part of discovery
    rss_before_mb = peak_rss_mb()
    try:
        runs: list[tuple[float, int, Counter[str]]] = []
        for _ in range(1 + repeat):
            queries_before = connector.stats.queries
            t0 = time.perf_counter()
            by_table = Counter(record.location for record in connector.discover(subject))
            elapsed = time.perf_counter() - t0
            runs.append((elapsed, connector.stats.queries - queries_before, by_table))
    finally:
        connector.close()
    rss_after_mb = peak_rss_mb()
    cold_s, queries, by_table = runs[0]
    stable = all(q == queries and t == by_table for _, q, t in runs[1:])
    return SourceResult(
        source="onprem",
        cold_s=cold_s,
        warm_s=[elapsed for elapsed, _, _ in runs[1:]],
        queries=queries,
        records=sum(by_table.values()),
        records_by_table=dict(sorted(by_table.items())),
        setup_s=setup_s,
        rss_before_mb=round(rss_before_mb, 1),
        rss_after_mb=round(rss_after_mb, 1),
        stable=stable,
        notes=[] if stable else ["queries or records differ between runs"],
    )


def report(
    results: Sequence[SourceResult], *, url: str, subject: str, repeat: int, as_json: bool
) -> dict[str, Any]:
    """Print the figures (a table, or JSON) and return them as a dict."""
    rss = peak_rss_mb()
    total = {
        "cold_s": sum(r.cold_s for r in results),
        "best_s": sum(r.best_s for r in results),
        "median_s": sum(r.median_s for r in results),
        "queries": sum(r.queries for r in results),
        "records": sum(r.records for r in results),
        "rss_after_mb": round(rss, 1),
    }
    met = total["cold_s"] <= TARGET_DISCOVERY_S and rss <= TARGET_PEAK_RSS_MB
    figures: dict[str, Any] = {
        "url": sa.engine.make_url(url).render_as_string(hide_password=True),
        "subject": mask_email(subject),
        "warm_runs": repeat,
        "sources": [r.figures() for r in results],
        "total": total,
        "peak_rss_mb": round(rss, 1),
        "targets": {
            "discovery_s": TARGET_DISCOVERY_S,
            "peak_rss_mb": TARGET_PEAK_RSS_MB,
            "met": met,
        },
    }
    if as_json:
        print(json.dumps(figures, indent=2))
        return figures

    console = Console()
    table = Table(
        title=f"Access discovery for {figures['subject']} on {figures['url']}",
        caption=f"1 cold run + {repeat} warm runs; best and median over the warm runs",
    )
    table.add_column("source")
    for heading in ("cold (s)", "best (s)", "median (s)", "queries", "records", "peak RSS (MB)"):
        table.add_column(heading, justify="right")
    rows = [(r.source + ("" if r.stable else " (!)"), r.figures()) for r in results]
    for label, values in [*rows, ("total", total)]:
        if label == "total":
            table.add_section()
        table.add_row(
            label,
            f"{values['cold_s']:.3f}",
            f"{values['best_s']:.3f}",
            f"{values['median_s']:.3f}",
            str(values["queries"]),
            str(values["records"]),
            f"{values['rss_after_mb']:.1f}",
        )
    console.print(table)
    for r in results:
        breakdown = ", ".join(f"{name} {count}" for name, count in r.records_by_table.items())
        console.print(
            f"{r.source}: {breakdown}; connector set-up (reflection) {r.setup_s:.3f} s; "
            f"peak RSS before the first discovery {r.rss_before_mb:.1f} MB"
        )
        for note in r.notes:
            console.print(f"[red]{r.source}: {note}[/red]")
    verdict = "[green]met[/green]" if met else "[red]NOT met[/red]"
    console.print(
        f"targets: discovery <= {TARGET_DISCOVERY_S:g} s (cold), "
        f"peak RSS <= {TARGET_PEAK_RSS_MB:g} MB: {verdict}"
    )
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.onprem_access",
        description="Time discovery of one subject in the on-prem database (see README.md).",
    )
    parser.add_argument("--url", required=True, help="database URL, e.g. sqlite:///large.db")
    parser.add_argument("--subject", default=BENCH_SUBJECT, help="e-mail address to discover")
    parser.add_argument(
        "--phone", action="append", default=[], help="also a phone number of the subject"
    )
    parser.add_argument("--repeat", type=int, default=5, help="warm runs after the cold one")
    parser.add_argument("--mapping", type=Path, default=ONPREM_MAPPING)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is not met"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    subject = Subject.from_raw([args.subject], args.phone)
    results = [bench_onprem(args.url, subject, args.repeat, args.mapping)]
    figures = report(
        results, url=args.url, subject=subject.emails[0], repeat=args.repeat, as_json=args.json
    )
    if args.check and not figures["targets"]["met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Mail benchmark: discovery and erasure through msgraph-sdk against the Graph emulator's large
profile (20 mailboxes x 10,000 messages, 20 ms added to every request).

The emulator runs in a child process, so the peak RSS measured here (``ru_maxrss`` of this
process) is what the connector needs: it must follow the subject's footprint (50 messages), not
the 200,000 messages of the tenant.

    python -m benchmarks.mail_access                      # the issue's large profile
    python -m benchmarks.mail_access --per-mailbox 2000   # a quicker look

Targets (issue 3, issue 18): discovery for a subject with about 50 messages <= 3 s; requests
<= 1.2 x the lower bound, counted two ways: HTTP requests (a ``$batch`` counts once) against
the users list + ceil(mailboxes / 20) search batches + every further page + ceil(mailboxes with
hits / 20) folder batches + ceil(attachment lists / 20); and Graph requests as Graph's throttling
counts them (each ``$batch`` item) against the users list + one search per mailbox + further
pages + one folder listing per mailbox with hits + one attachment list per message with
attachments; erasure of 1,000 messages <= 1.2 x ceil(1000/20) batch requests right after
discovery, and <= 1.2 x (the look-up's batches + ceil(1000/20)) by a fresh connector (below);
peak RSS <= 300 MB.
Exchange's per-mailbox limits (4 in flight, 10,000 per 10 minutes) are on, as in the emulator by
default. ``--json`` prints the figures only: ``{"name", "figure", "unit", "anchor", "ratio",
"target"}`` each.

Measured here (2026-12-06, this container: 2 CPUs shared with other jobs, load average ~20;
defaults; 202,000 messages seeded in ~72 s):

- discovery of BENCH_SUBJECT (50 messages): cold 4.1 s, warm 4.1 / 1.8 / 1.8 s (target 3 s; the
  2026-11-22 figures on a quiet machine were 0.95-1.45 s);
- HTTP requests: 3 for a lower bound of 3 = 1.00x (main: 22 = one ``GET /users``, one folder
  ``$batch`` and 20 searches): the users list, one ``$batch`` of the 20 first search pages, one
  of the folder names of the 18 mailboxes with hits;
- Graph requests (batch items counted): 39 for a lower bound of 39 = 1.00x;
- no 429 from Exchange's limits (one item per mailbox per batch);
- erasure of 1,000 messages right after discovery: 50 ``$batch`` requests = 1.00x of
  ceil(1000/20), 6.3 s; by a fresh connector: 56 (100 look-ups in 5 batches + 50), 6.0 s;
  re-discovery finds nothing;
- peak RSS of this process: 150 MB (target 300 MB).

Why a fresh connector's anchor includes its look-up (issue 18): the erasure flow runs on a plan
made at an earlier discovery, often days before the officer's approval. The plan names each
message by internetMessageId; its Graph ids are stale by then (an id changes when a message
moves) and its folder may have changed, and a copy in a held folder must be kept. So before any
DELETE the connector reads, in every mailbox the plan saw the message in, each copy's current id
and folder: one ``$filter`` per 10 ids and mailbox, plus each mailbox's folder listing (for the
hold check), 20 items to a ``$batch``. Skipping it would delete by ids it has not seen since the
plan, and hold checks would read folders from days before, which the safety rules forbid; so its
batches are part of the least a fresh connector can do: ceil((mailboxes + filters) / 20) +
ceil(n / 20). Figures (2026-12-06, ``--mailboxes 5 --per-mailbox 2000 --erase 100 --runs 1``):
main sent the folder listings in a ``$batch`` of their own, 7 = 1 + 1 + 5 for a bound of 6;
now they ride in the look-up's batch: 6 = 1 + 5 (1.00x; 1.20x of the bare ceil(n/20)). With
``--mailboxes 20 --per-mailbox 2000 --erase 1000 --runs 1``: 120 look-up items (20 folder
listings, 100 filters) in 6 batches + 50 = 56 for a bound of 56 (main: also 56 = 1 + 5 + 50).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import resource
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from benchmarks.figures import figure

REPO = Path(__file__).resolve().parents[1]
TARGET_DISCOVERY_S = 3.0
TARGET_REQUEST_RATIO = 1.2
TARGET_PEAK_RSS_MB = 300.0


def _serve(pipe: Connection, mailboxes: int, per_mailbox: int, erase: int, latency: float) -> None:
    """The child: seed the large profile, serve it, report the URL, wait for "stop"."""
    from sandbox import mail_seed
    from sandbox.emulators.faults import Faults, FaultSettings
    from sandbox.emulators.graph import GraphStore, create_app
    from sandbox.emulators.server import EmulatorServer

    store = GraphStore(tenant_domain=mail_seed.TENANT)
    counts = mail_seed.generate_large(
        store, mailboxes=mailboxes, per_mailbox=per_mailbox, erase_messages=erase
    )
    faults = Faults(FaultSettings(latency_ms=latency))
    with EmulatorServer(create_app(store, faults), name="graph-bench") as url:
        pipe.send((url, counts))
        pipe.recv()


def _stats(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/_emulator/stats").json()["requests"]


def _reset(url: str) -> None:
    httpx.post(f"{url}/_emulator/reset-stats")


def _connector(url: str, page_size: int) -> Any:
    from connectors.mail.connector import MailConnector
    from connectors.mail.settings import MailSource
    from dsrflow.mapping import load_mapping

    mapping = load_mapping(REPO / "mappings" / "mail.yaml")
    settings = MailSource(
        kind="mail", mapping=Path("mail.yaml"), base_url=f"{url}/v1.0", page_size=page_size
    )
    return MailConnector("mail", mapping, settings)  # type: ignore[arg-type]


def _discovery(url: str, subject: str, page_size: int) -> dict[str, Any]:
    from dsrflow.request import Subject

    _reset(url)
    items_before = sum(httpx.get(f"{url}/_emulator/graph").json()["batch_items"].values())
    connector = _connector(url, page_size)
    started = time.perf_counter()
    records = list(connector.discover(Subject.from_raw([subject])))
    elapsed = time.perf_counter() - started
    requests = _stats(url)
    items = httpx.get(f"{url}/_emulator/graph").json()
    connector.close()
    stats = connector.stats
    mailboxes = stats.searches - stats.search_splits  # one first-page search each
    further = stats.pages - stats.searches  # pages after the first of a search
    with_hits = len({r.fields.get("mailbox") for r in records})
    attachments = stats.attachment_requests
    # The least HTTP requests for this answer: the users list, the first search pages 20
    # mailboxes to a $batch, every further page (each needs the one before), the folder
    # names of the mailboxes with hits 20 to a $batch, the attachment lists 20 to a $batch.
    http_bound = (
        1
        + math.ceil(mailboxes / 20)
        + further
        + math.ceil(with_hits / 20)
        + math.ceil(attachments / 20)
    )
    # What Graph's throttling counts (each $batch item is a request): one search per
    # mailbox and further page, the users list, folder names and attachment lists.
    graph_bound = 1 + mailboxes + further + with_hits + attachments
    graph_made = sum(requests.values()) - requests.get("POST /$batch", 0)
    graph_made += sum(items["batch_items"].values()) - items_before
    return {
        "seconds": round(elapsed, 3),
        "records": len(records),
        "requests": sum(requests.values()),
        "minimum": http_bound,
        "graph_requests": graph_made,
        "graph_minimum": graph_bound,
        "by_route": requests,
    }


def _plan(records: list[Any], mapping: Any) -> list[Any]:
    """The plan the erasure flow would make: copies folded, then the mapping's actions."""
    from dsrflow.merge import fold_records
    from dsrflow.planning import build_erasure_plan

    today = dt.datetime.now(dt.UTC).date()
    return build_erasure_plan(fold_records(records), {records[0].source: mapping}, today)


def _erasure(url: str, subject: str, page_size: int, *, fresh: bool) -> dict[str, Any]:
    from dsrflow.request import Subject

    finder = _connector(url, page_size)
    records = list(finder.discover(Subject.from_raw([subject])))
    eraser = _connector(url, page_size) if fresh else finder
    plan = _plan(records, finder.mapping)
    _reset(url)
    started = time.perf_counter()
    report = eraser.erase(plan, Subject.from_raw([subject]))
    elapsed = time.perf_counter() - started
    requests = _stats(url)
    left = list(_connector(url, page_size).discover(Subject.from_raw([subject])))
    finder.close()
    eraser.close()
    return {
        "messages": len(records),
        "seconds": round(elapsed, 3),
        "complete": report.complete,
        "batch_requests": requests.get("POST /$batch", 0),
        "erase_batches": eraser.stats.erase_batches,
        "lookups": eraser.stats.lookups,
        # The look-up's $batch items: a folder listing per mailbox looked in, and the filters.
        "lookup_items": eraser.stats.lookups
        + (len({m for a in plan for m in a.hints.get("mailboxes", [])}) if fresh else 0),
        "left_after": len(left),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--per-mailbox", type=int, default=10_000)
    parser.add_argument("--erase", type=int, default=1000, help="messages per erasure subject")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--runs", type=int, default=3, help="warm discovery runs")
    parser.add_argument("--json", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)

    from sandbox.mail_seed import BENCH_SUBJECT, ERASE_SUBJECTS

    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_serve,
        args=(child, args.mailboxes, args.per_mailbox, args.erase, args.latency_ms),
        daemon=True,
    )
    seeding = time.perf_counter()
    process.start()
    url, counts = parent.recv()
    seeded_s = time.perf_counter() - seeding
    try:
        cold = _discovery(url, BENCH_SUBJECT, args.page_size)
        warm = [_discovery(url, BENCH_SUBJECT, args.page_size) for _ in range(args.runs)]
        cached = _erasure(url, ERASE_SUBJECTS[0], args.page_size, fresh=False)
        fresh = _erasure(url, ERASE_SUBJECTS[1], args.page_size, fresh=True)
    finally:
        parent.send("stop")
        process.join(timeout=30)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm_s = statistics.median(w["seconds"] for w in warm)
    ratio = warm[0]["requests"] / warm[0]["minimum"]
    batch_target = TARGET_REQUEST_RATIO * math.ceil(args.erase / 20)
    # A fresh connector's least: the look-up (see the docstring), then the deletions.
    fresh_bound = math.ceil(fresh["lookup_items"] / 20) + math.ceil(args.erase / 20)
    result = {
        "profile": {
            **counts,
            "latency_ms": args.latency_ms,
            "page_size": args.page_size,
            "seeding_s": round(seeded_s, 1),
        },
        "discovery": {
            "cold_s": cold["seconds"],
            "warm_s": [w["seconds"] for w in warm],
            "records": warm[0]["records"],
            "requests": warm[0]["requests"],
            "minimum_requests": warm[0]["minimum"],
            "graph_requests": warm[0]["graph_requests"],
            "graph_minimum": warm[0]["graph_minimum"],
            "by_route": warm[0]["by_route"],
        },
        "erasure_after_discovery": cached,
        "erasure_by_fresh_connector": fresh,
        "peak_rss_mb": round(peak_mb, 1),
        "targets": {
            f"discovery <= {TARGET_DISCOVERY_S} s (warm)": warm_s <= TARGET_DISCOVERY_S,
            f"requests <= {TARGET_REQUEST_RATIO} x minimum ({ratio:.2f})": ratio
            <= TARGET_REQUEST_RATIO,
            f"erasure batches <= {batch_target:g} (after discovery)": cached["batch_requests"]
            <= batch_target,
            f"erasure batches <= {TARGET_REQUEST_RATIO} x {fresh_bound} (fresh connector)": fresh[
                "batch_requests"
            ]
            <= TARGET_REQUEST_RATIO * fresh_bound,
            f"peak RSS <= {TARGET_PEAK_RSS_MB} MB": peak_mb <= TARGET_PEAK_RSS_MB,
        },
    }
    graph_ratio = warm[0]["graph_requests"] / warm[0]["graph_minimum"]
    figures = [
        figure(
            "mail HTTP requests / lower bound",
            warm[0]["requests"],
            "requests",
            warm[0]["minimum"],
            TARGET_REQUEST_RATIO,
        ),
        figure(
            "mail Graph requests (batch items counted) / lower bound",
            warm[0]["graph_requests"],
            "requests",
            warm[0]["graph_minimum"],
            TARGET_REQUEST_RATIO,
        ),
        figure("mail discovery, Exchange limits on (warm)", warm_s, "s", TARGET_DISCOVERY_S, 1.0),
        figure(
            "mail erasure batches / look-up + ceil(n/20) (fresh connector)",
            fresh["batch_requests"],
            "requests",
            fresh_bound,
            TARGET_REQUEST_RATIO,
        ),
        figure("mail peak RSS", peak_mb, "MB", TARGET_PEAK_RSS_MB, 1.0),
    ]
    result["targets"][f"Graph requests <= {TARGET_REQUEST_RATIO} x minimum ({graph_ratio:.2f})"] = (
        graph_ratio <= TARGET_REQUEST_RATIO
    )
    print(json.dumps(figures if args.json else result, indent=2))
    return result


if __name__ == "__main__":
    main()

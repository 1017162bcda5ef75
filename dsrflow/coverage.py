"""Nothing unmapped: the coverage survey of every source, its report, and where the last one
is kept (issue 15).

A subject's data in a place no mapping names is silently left out of every answer. The survey
opens each source through the registry and asks a connector that is ``Surveying`` for the
places it has that the mapping does not cover; each ``Finding`` names the place and the mapping
entry that would cover it, from samples and counts, never contents.

Where the last report is kept: the ledger, as one ``coverage_checked`` audit entry not tied to
a request (time, open findings, findings per source, the sources not surveyed: counts and
source names only). That puts it beside the requests that read it, under the same hash chain
and owner-only file; an access request warns when it is missing, older than
``coverage_max_age_days`` or has open findings.

What is "open": every finding, and every source that could not be surveyed (unreachable, a
broken mapping, a kind without a survey we know nothing of): a missing answer is not "nothing
there". Kinds with nothing of their own to survey (``NOTHING_TO_SURVEY``) are said so in every
report and are not open.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from connectors import SourceContext, open_connector
from connectors.base import Finding, SourceUnavailable, Surveying
from dsrflow.config import Config
from dsrflow.errors import DsrflowError
from dsrflow.ledger import Ledger, audit_table
from dsrflow.mapping import MappingError, load_mapping

EVENT = "coverage_checked"

# Kinds that hold nothing a mapping could leave out, and why (said in every report).
NOTHING_TO_SURVEY: dict[str, str] = {
    "marketplace": "nothing to survey: the vendor API reports only this vendor's licences and "
    "transactions, and discovery reads all of them",
    "analytics": "nothing to survey: the User Deletion API can only delete, it reads nothing",
}


@dataclass
class CoverageReport:
    at: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    not_surveyed: dict[str, str] = field(default_factory=dict)  # source -> why (open)
    nothing_to_survey: dict[str, str] = field(default_factory=dict)  # source -> why
    surveyed: list[str] = field(default_factory=list)

    @property
    def open_findings(self) -> int:
        return len(self.findings) + len(self.not_surveyed)

    def per_source(self) -> dict[str, int]:
        counts = {name: 0 for name in self.surveyed}
        for finding in self.findings:
            counts[finding.source] = counts.get(finding.source, 0) + 1
        return counts

    def lines(self) -> list[str]:
        """The report for the officer's terminal: every finding with the place as the officer
        knows it (a mailbox's address, a spreadsheet's title) and the entry that covers it."""
        out: list[str] = []
        for f in self.findings:
            label = f" ({f.label})" if f.label else ""
            out.append(f"finding {f.source}: {f.what} {f.place}{label}: {f.evidence}")
            out.append(f"  would be covered in the mapping of {f.source!r} by:")
            out += [f"    {line}" for line in f.snippet.splitlines()]
        out += [f"not surveyed {name}: {why}" for name, why in sorted(self.not_surveyed.items())]
        out += [f"{name}: {why}" for name, why in sorted(self.nothing_to_survey.items())]
        out += [f"ok {name}: nothing outside the mapping" for name in self.clean_sources()]
        return out

    def clean_sources(self) -> list[str]:
        return [name for name, n in sorted(self.per_source().items()) if n == 0]

    def markdown(self, scrub: Callable[[str], str] = str) -> str:
        """The report for Prefect (an artifact, kept in its database for ever): places by id
        only; a finding whose place is known by a personal name (``label``) shows no mapping
        entry, which would repeat it (``dsr coverage`` prints it). ``scrub`` cleans why a
        source was not surveyed: a vendor's error may name an account (the flow passes
        ``flows.private.scrub``)."""
        stamp = self.at.astimezone(dt.UTC).isoformat(timespec="seconds")
        out = [
            "# Coverage report",
            "",
            f"{stamp}: **{self.open_findings} open** ({len(self.findings)} finding(s), "
            f"{len(self.not_surveyed)} source(s) not surveyed).",
            "",
        ]
        if self.findings:
            out += ["| source | place | id | evidence | mapping entry |", "|---|---|---|---|---|"]
            for f in self.findings:
                entry = (
                    "`dsr coverage` shows it"
                    if f.label
                    else "<br>".join(f"`{_cell(line)}`" for line in f.snippet.splitlines())
                )
                out.append(
                    f"| {_cell(f.source)} | {f.what} | `{_cell(f.place)}` | {_cell(f.evidence)} "
                    f"| {entry} |"
                )
            out.append("")
        for name, why in sorted(self.not_surveyed.items()):
            out.append(f"- **not surveyed** {name}: {_cell(scrub(why))}")
        for name, why in sorted(self.nothing_to_survey.items()):
            out.append(f"- {name}: {why}")
        for name in self.clean_sources():
            out.append(f"- {name}: nothing outside the mapping")
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def survey(config: Config, now: dt.datetime | None = None) -> CoverageReport:
    """Survey every configured source; a source that fails is reported, never skipped."""
    report = CoverageReport(at=now or dt.datetime.now(dt.UTC))
    for name, source in config.sources.items():
        if source.kind in NOTHING_TO_SURVEY:
            report.nothing_to_survey[name] = NOTHING_TO_SURVEY[source.kind]
            continue
        try:
            mapping = load_mapping(source.mapping)
            with open_connector(name, source, mapping, SourceContext.of(config)) as connector:
                if not isinstance(connector, Surveying):
                    report.not_surveyed[name] = f"the {source.kind} kind has no coverage survey"
                    continue
                report.findings += connector.survey()
        except MappingError as exc:
            report.not_surveyed[name] = f"mapping {exc.path}: {'; '.join(exc.problems)}"
        except SourceUnavailable as exc:
            report.not_surveyed[name] = exc.reason
        except (DsrflowError, LookupError, ValueError) as exc:
            report.not_surveyed[name] = str(exc).splitlines()[0]
        else:
            report.surveyed.append(name)
    return report


def store(ledger: Ledger, report: CoverageReport, actor: str = "dsrflow") -> None:
    """Keep the report's time and counts in the ledger (names of sources, no places)."""
    ledger.record(
        None,
        EVENT,
        actor=actor,
        surveyed_at=report.at.astimezone(dt.UTC).isoformat(),
        open_findings=report.open_findings,
        findings_per_source=report.per_source(),
        not_surveyed=sorted(report.not_surveyed),
    )


@dataclass(frozen=True)
class LastCoverage:
    at: dt.datetime
    open_findings: int


def last_coverage(ledger: Ledger) -> LastCoverage | None:
    """The newest ``coverage_checked`` entry of the ledger, or None."""
    query = (
        sa.select(audit_table.c.details)
        .where(audit_table.c.event == EVENT)
        .order_by(audit_table.c.seq.desc())
        .limit(1)
    )
    with ledger.engine.connect() as conn:
        details = conn.execute(query).scalar()
    if details is None:
        return None
    data = json.loads(details)
    return LastCoverage(dt.datetime.fromisoformat(data["surveyed_at"]), int(data["open_findings"]))


def coverage_warning(ledger: Ledger, config: Config, now: dt.datetime | None = None) -> str | None:
    """One line for an access request when the last coverage report cannot vouch that every
    place with personal data is mapped; None when it can."""
    last = last_coverage(ledger)
    hint = "run `dsr coverage` (or the coverage-check deployment)"
    if last is None:
        return (
            "no coverage report exists: personal data in places no mapping names would be "
            f"missing from this answer unnoticed; {hint}"
        )
    problems = []
    age = (now or dt.datetime.now(dt.UTC)) - last.at
    if age > dt.timedelta(days=config.coverage_max_age_days):
        problems.append(
            f"is {age.days} days old (coverage_max_age_days: {config.coverage_max_age_days})"
        )
    if last.open_findings:
        problems.append(f"has {last.open_findings} open finding(s)")
    if not problems:
        return None
    stamp = last.at.date().isoformat()
    return (
        f"the last coverage report ({stamp}) {' and '.join(problems)}: this answer may miss "
        f"personal data in places no mapping names; {hint}"
    )

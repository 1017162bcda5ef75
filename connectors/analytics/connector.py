"""Erasure in Google Analytics through the User Deletion API, and nothing else: the API
cannot look a person up (no Discovering), rectify or restrict."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.analytics.client import AnalyticsClient, AnalyticsRefused
from connectors.analytics.mapping import AnalyticsMapping
from connectors.analytics.settings import AnalyticsSource
from connectors.base import Closing, not_carried_out
from dsrflow.plan import Action, ActionResult, ExecutionReport, Outcome, PlannedAction
from dsrflow.request import Subject

# What Google does after accepting a request ("User Deletion API" overview): the data is
# removed from reports within about 72 hours and from Analytics' servers in the next deletion
# process, which runs about every two months.
REMAINS = (
    "Google removes the data from reports within about 72 hours and from its servers in its "
    "next deletion run (about every two months)"
)


class AnalyticsConnector(Closing):
    def __init__(
        self,
        name: str,
        mapping: AnalyticsMapping,
        source: AnalyticsSource,
        client: AnalyticsClient | None = None,
    ) -> None:
        self.name = name
        self.mapping = mapping
        self.source = source
        self.client = client or AnalyticsClient(name, source)

    def erase(self, actions: Sequence[PlannedAction], subject: Subject) -> ExecutionReport:
        """One deletion request per DELETE action (``native_id``: ``type``, ``userId``); the
        result carries Google's deletionRequestTime. An id that is not the subject's is
        refused, never sent."""
        report = ExecutionReport(source=self.name)
        own = {i.value for i in subject.identifiers if i.kind.startswith("analytics_")}
        for action in actions:
            if action.action != Action.DELETE:
                report.results.append(not_carried_out(action))
                continue
            user_id = str(action.native_id.get("userId", ""))
            id_type = str(action.native_id.get("type", ""))
            if user_id not in own or id_type not in ("CLIENT_ID", "USER_ID"):
                report.results.append(
                    ActionResult(
                        record_id=action.record_id,
                        outcome=Outcome.FAILED,
                        detail="not one of the subject's Analytics ids: not sent",
                    )
                )
                continue
            try:
                answer = self.client.upsert(self.source.property_id, id_type, user_id)
            except AnalyticsRefused as refused:
                detail = (
                    "the daily quota of 500 deletion requests is used up: file it again tomorrow"
                    if refused.reason == "dailyLimitExceeded"
                    else f"Google refused the deletion request: {refused}"
                )
                report.results.append(
                    ActionResult(record_id=action.record_id, outcome=Outcome.FAILED, detail=detail)
                )
                continue
            when = answer["deletionRequestTime"]
            report.results.append(
                ActionResult(
                    record_id=action.record_id,
                    outcome=Outcome.DONE,
                    detail=f"deletion requested; deletionRequestTime {when}",
                    remains=REMAINS,
                    requested_at=str(when),
                )
            )
        return report

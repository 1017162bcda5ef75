"""What every connector's write path shares: a write whose answer was lost.

A non-idempotent write (a Sheets row deletion by index, a Graph move, a Jira comment delete) is
sent once. When its answer is lost — the connection reset or timed out, or a 5xx came back,
which a proxy or load balancer sends when it gives up on a backend that may have committed —
the write may or may not have run. The client raises ``AmbiguousWrite`` and the connector reads
the target again and decides from what it sees: done, not done (send it again), or changed by
someone else (fail, send nothing).

A 429 is different: the vendors document it as a request refused before it ran, so it is sent
again after the wait they ask for:
* Google Sheets: requests over the per-minute quota "exceed the quota and generate a 429"
  (https://developers.google.com/sheets/api/limits); a batchUpdate is atomic (ibid.).
* Microsoft Graph: "When throttling occurs, Microsoft Graph returns HTTP status code 429 (Too
  many requests), and the requests fail" (https://learn.microsoft.com/graph/throttling).
* Jira Cloud: "Retry-After indicates how many seconds the app must wait before reissuing the
  request" (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
"""

from __future__ import annotations


class AmbiguousWrite(Exception):
    """A write whose answer was lost: it may or may not have been applied."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)

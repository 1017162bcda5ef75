"""The settings of a Jira site (`kind: jira` in the config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from connectors.settings import SourceSettings
from dsrflow.secrets import SecretRef


class JiraSource(SourceSettings):
    """A Jira site (Cloud: e-mail + API token; Data Center: personal access token)."""

    kind: Literal["jira"]
    url: str = Field(
        description="the site, e.g. https://acme.atlassian.net, or the sandbox emulator's URL"
    )
    deployment: Literal["cloud", "data_center"] = Field(
        default="cloud", description="what the site is; decides authentication"
    )
    email: str | None = Field(default=None, description="Cloud: the account of the API token")
    api_token: SecretRef | None = Field(
        default=None, description="Cloud: API token, {env: NAME} or {prefect_secret: block}"
    )
    personal_access_token: SecretRef | None = Field(
        default=None, description="Data Center: personal access token, {env: NAME} or Secret block"
    )
    page_size: int = Field(default=100, ge=1, le=100, description="issues per search page")
    max_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a throttled or failing request"
    )
    max_retry_wait_s: float = Field(
        default=60, gt=0, description="longest Retry-After honoured before giving up"
    )
    timeout_s: float = Field(default=60, gt=0, description="per request")
    metadata_cache_s: float = Field(
        default=600,
        ge=0,
        description="how long the site's serverInfo, field ids and service desk list are "
        "shared by the connectors of one process (0: each connector reads them); people "
        "(users, customers, issues) are never cached",
    )
    site_facts_file: Path | None = Field(
        default=None,
        description="an owner-only JSON file (relative to the config file) that keeps the "
        "site's serverInfo, field ids and service desk list between commands for "
        "metadata_cache_s; none: each command reads them once. Holds no personal data",
    )

    @model_validator(mode="after")
    def _credentials(self) -> JiraSource:
        if self.deployment == "cloud" and not (self.email and self.api_token):
            raise ValueError("a Jira Cloud site needs email and api_token")
        if self.deployment == "data_center" and not self.personal_access_token:
            raise ValueError("a Jira Data Center site needs personal_access_token")
        return self

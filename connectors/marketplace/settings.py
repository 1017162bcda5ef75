"""The settings of an Atlassian Marketplace vendor account (`kind: marketplace` in the config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.settings import SourceSettings
from dsrflow.secrets import SecretRef


class MarketplaceSource(SourceSettings):
    """The Marketplace vendor API (REST v2): basic auth with an Atlassian account e-mail and
    its API token; the account must be a contact of the vendor with access to reporting."""

    kind: Literal["marketplace"]
    url: str = Field(
        default="https://marketplace.atlassian.com",
        description="the Marketplace API's base URL, or the sandbox emulator's",
    )
    vendor_id: int = Field(ge=1, description="the vendor's id (Manage vendor account > id)")
    email: str = Field(description="the Atlassian account of the API token")
    api_token: SecretRef = Field(description="API token, {env: NAME} or {prefect_secret: block}")
    page_size: int = Field(
        default=50, ge=1, le=50, description="licences or transactions per page (the API's cap)"
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a throttled or failing request"
    )
    max_retry_wait_s: float = Field(
        default=60, gt=0, description="longest Retry-After honoured before giving up"
    )
    timeout_s: float = Field(default=60, gt=0, description="per request")

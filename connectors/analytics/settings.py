"""The settings of a Google Analytics property (`kind: analytics` in the config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from connectors.settings import SourceSettings
from dsrflow.secrets import SecretRef


class AnalyticsSource(SourceSettings):
    """One GA4 property, through the User Deletion API with a service account that has the
    Editor role on the property (no domain-wide delegation)."""

    kind: Literal["analytics"]
    property_id: str = Field(pattern=r"^\d{1,20}$", description="the GA4 property's id")
    credentials_file: Path | None = Field(
        default=None, description="the service account's JSON key file"
    )
    credentials: SecretRef | None = Field(
        default=None, description="the JSON key itself: {env: NAME} or {prefect_secret: block}"
    )
    api_url: str | None = Field(
        default=None, description="base URL of the API, e.g. the sandbox emulator; none: Google"
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a throttled or failing upsert"
    )
    backoff_s: float = Field(default=1.0, gt=0, description="first backoff; doubles each retry")
    timeout_s: float = Field(default=60, gt=0, description="per request")

    @model_validator(mode="after")
    def _one_key(self) -> AnalyticsSource:
        if bool(self.credentials_file) == bool(self.credentials):
            raise ValueError("give exactly one of credentials_file and credentials")
        return self

"""The settings of a Google Drive source (`kind: drive` in the config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from connectors.settings import SourceSettings
from dsrflow.secrets import SecretRef


class DriveSource(SourceSettings):
    """Google Drive spreadsheets through a service account with domain-wide delegation."""

    kind: Literal["drive"]
    credentials_file: Path | None = Field(
        default=None, description="the service account's JSON key file"
    )
    credentials: SecretRef | None = Field(
        default=None,
        description="the JSON key itself: {env: NAME} or {prefect_secret: block}",
    )
    delegated_user: str | None = Field(
        default=None,
        description="the Workspace user the service account acts as (domain-wide delegation)",
    )
    api_url: str | None = Field(
        default=None,
        description="base URL of the Drive/Sheets API, e.g. the sandbox emulator; none: Google",
    )
    page_size: int = Field(default=1000, ge=1, le=1000, description="files per Drive list page")
    workers: int = Field(default=8, ge=1, le=64, description="spreadsheets read at the same time")
    read_via: Literal["export", "sheets"] = Field(
        default="export",
        description=(
            "how discovery reads spreadsheets: 'export' fetches each as .xlsx through Drive's "
            "files.export (Drive's quota) and reads through the Sheets API, in one request, "
            "only those the export cannot clear of the subject; 'sheets' reads every one "
            "through the Sheets API (one request each; 60 reads a minute per user)"
        ),
    )
    max_retries: int = Field(
        default=5, ge=0, le=10, description="retries of a 429/5xx, with exponential backoff"
    )
    backoff_s: float = Field(default=1.0, gt=0, description="first backoff; doubles each retry")
    max_backoff_s: float = Field(default=32.0, gt=0, description="longest single backoff")
    timeout_s: float = Field(default=60, gt=0, description="per request")

    @model_validator(mode="after")
    def _one_key(self) -> DriveSource:
        if bool(self.credentials_file) == bool(self.credentials):
            raise ValueError("give exactly one of credentials_file and credentials")
        return self

"""The settings of an Office 365 mail source (`kind: mail` in the config)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from connectors.settings import SourceSettings
from dsrflow.secrets import SecretRef


class MailSource(SourceSettings):
    """Office 365 mail through Microsoft Graph, app-only (client credentials)."""

    kind: Literal["mail"]
    tenant_id: str | None = Field(default=None, description="Entra ID tenant (directory) id")
    client_id: str | None = Field(default=None, description="the app registration's client id")
    client_secret: SecretRef | None = Field(
        default=None, description="the app's client secret: {env: NAME} or {prefect_secret: block}"
    )
    base_url: str | None = Field(
        default=None,
        description="Graph base URL override, e.g. the sandbox emulator http://127.0.0.1:PORT/v1.0",
    )
    page_size: int = Field(default=250, ge=1, le=1000, description="$top of each search page")
    max_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a throttled or failing request"
    )
    max_retry_wait_s: float = Field(
        default=60,
        gt=0,
        description="longest Retry-After a throttled batch item is waited for; a longer one "
        "(Exchange's 10-minute request-rate window) fails the source at once",
    )
    timeout_s: float = Field(default=60, gt=0, description="per request")

    @model_validator(mode="after")
    def _credentials(self) -> MailSource:
        given = [self.tenant_id, self.client_id, self.client_secret]
        if any(given) and not all(given):
            raise ValueError("give all of tenant_id, client_id and client_secret, or none")
        if not any(given) and not _is_loopback(self.base_url):
            raise ValueError(
                "without tenant_id, client_id and client_secret only a loopback base_url "
                "(the sandbox emulator) can be used"
            )
        return self


def _is_loopback(url: str | None) -> bool:
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")

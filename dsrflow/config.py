"""The dsrflow configuration file: the controller, the sources and where their mappings are.

A config is YAML. Relative paths inside it are resolved against the file's own folder. Secrets
never sit in it: a source names the environment variable that holds its database URL, and
secrets (API tokens, the masking key) are references: ``{env: NAME}``, ``{file: PATH}`` (mode
0600) or ``{prefect_secret: block}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dsrflow.errors import DsrflowError
from dsrflow.mapping import BaseMapping, MappingError, load_mapping
from dsrflow.secrets import SecretRef, SecretUnavailable


class ConfigError(DsrflowError, ValueError):
    """The config file is missing or wrong; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Strict):
    """Art. 15(1)(c): who receives the data, and in what role."""

    name: str
    role: Literal["processor", "controller", "joint_controller"]
    purpose: str
    country: str | None = None
    safeguards: str | None = Field(default=None, description="e.g. EU standard contractual clauses")


class SupervisoryAuthority(_Strict):
    name: str = "Datatilsynet"
    url: str = "https://www.datatilsynet.no"
    address: str = "Postboks 458 Sentrum, 0105 Oslo, Norway"


class Controller(_Strict):
    """Who answers for the processing; printed in every export (Art. 13/15)."""

    name: str
    address: str
    contact_email: str
    dpo_email: str | None = None
    recipients: list[Recipient] = Field(default_factory=list)
    supervisory_authority: SupervisoryAuthority = SupervisoryAuthority()
    automated_decision_making: str = (
        "none: no decision about the subject is made solely by automated means"
    )


class SqlSource(_Strict):
    kind: Literal["sql"]
    mapping: Path
    url: str | None = Field(default=None, description="SQLAlchemy URL; prefer url_env for secrets")
    url_env: str | None = Field(default=None, description="environment variable with the URL")
    batch_size: int = Field(default=500, ge=1, le=10_000, description="keys per IN-list query")
    timezone: str = Field(default="UTC", description="zone of naive timestamps in this database")
    masking_key: SecretRef | None = Field(
        default=None,
        description="key of hmac_sha256 masking for this database; default: the config's "
        "masking_key, else the environment variable DSRFLOW_HMAC_KEY",
    )

    @model_validator(mode="after")
    def _one_url(self) -> SqlSource:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("give exactly one of url and url_env")
        return self

    def database_url(self) -> str:
        if self.url:
            return self.url
        assert self.url_env is not None
        value = os.environ.get(self.url_env)
        if not value:
            raise ConfigError(f"environment variable {self.url_env} (the database URL) is not set")
        return value


class MailSource(_Strict):
    """Office 365 mail through Microsoft Graph, app-only (client credentials)."""

    kind: Literal["mail"]
    mapping: Path
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
    from urllib.parse import urlsplit

    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


class JiraSource(_Strict):
    """A Jira site (Cloud: e-mail + API token; Data Center: personal access token)."""

    kind: Literal["jira"]
    mapping: Path
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

    @model_validator(mode="after")
    def _credentials(self) -> JiraSource:
        if self.deployment == "cloud" and not (self.email and self.api_token):
            raise ValueError("a Jira Cloud site needs email and api_token")
        if self.deployment == "data_center" and not self.personal_access_token:
            raise ValueError("a Jira Data Center site needs personal_access_token")
        return self


class DriveSource(_Strict):
    """Google Drive spreadsheets through a service account with domain-wide delegation."""

    kind: Literal["drive"]
    mapping: Path
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


Source = Annotated[
    Union[  # noqa: UP007 - one line per kind, so that adding one is a one-line change
        SqlSource,
        DriveSource,
        JiraSource,
        MailSource,
    ],
    Field(discriminator="kind"),
]


class ApprovalPolicy(_Strict):
    """How changing requests are approved."""

    four_eyes: bool = Field(
        default=False,
        description="the officer who approves must not be the one who opened the request",
    )
    timeout_hours: int = Field(
        default=72, gt=0, description="how long a paused request waits for the officer"
    )


class Config(_Strict):
    controller: Controller
    sources: dict[str, Source] = Field(min_length=1)
    phone_region: str = Field(default="NO", description="region of phone numbers given without +")
    output_dir: Path = Path("exports")
    ledger_url: str = Field(
        default="sqlite:///ledger.db",
        description="SQLAlchemy URL of the request ledger; a relative SQLite path is relative "
        "to the config file",
    )
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    export_retention_days: int = Field(
        default=30,
        gt=0,
        description="days an export folder is kept after it was written; the retention sweep "
        "removes it then (an erasure of its subject removes it at once)",
    )
    ledger_key: SecretRef | None = Field(
        default=None,
        description="the ledger key, {file: PATH} (mode 0600), {env: NAME} or {prefect_secret: "
        "block}: every audit entry carries an HMAC under it, so a rewritten chain shows "
        "(default: $DSRFLOW_LEDGER_KEY, if set)",
    )
    masking_key: SecretRef | None = Field(
        default=None,
        description="key of hmac_sha256 masking: {file: PATH} (mode 0600), {env: NAME} or "
        "{prefect_secret: block}; wins over the environment variable DSRFLOW_HMAC_KEY",
    )

    def resolved(self, base: Path) -> Config:
        """Paths in the file are relative to the file; SQL sources without a masking key of
        their own get the config's."""
        sources = {
            name: _with_paths_under(_with_masking_key(src, self.masking_key), base)
            for name, src in self.sources.items()
        }
        ledger_url = self.ledger_url
        prefix = "sqlite:///"
        if ledger_url.startswith(prefix) and not ledger_url.startswith(prefix + "/"):
            ledger_url = prefix + str(base / ledger_url.removeprefix(prefix))
        return self.model_copy(
            update={
                "sources": sources,
                "masking_key": _with_paths_under(self.masking_key, base)
                if self.masking_key
                else None,
                "output_dir": base / self.output_dir,
                "ledger_url": ledger_url,
                "ledger_key": _with_paths_under(self.ledger_key, base) if self.ledger_key else None,
            }
        )

    def ledger_secret(self) -> bytes | None:
        """The value of ``ledger_key``; None without one (the ledger then reads
        $DSRFLOW_LEDGER_KEY). LookupError names where it was looked for."""
        if self.ledger_key is None:
            return None
        key = self.ledger_key.resolve()
        if not key:
            raise SecretUnavailable(f"the ledger key ({self.ledger_key.describe()}) is empty")
        return key.encode("utf-8")

    def load_mappings(self) -> dict[str, BaseMapping]:
        """Every source's mapping, validated; all problems of all files reported at once."""
        mappings: dict[str, BaseMapping] = {}
        errors: list[MappingError] = []
        for name, source in self.sources.items():
            try:
                mappings[name] = load_mapping(source.mapping)
            except MappingError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]  # names the file and each problem's line
        if errors:
            raise MappingError(
                Path(" and ".join(str(e.path) for e in errors)),
                [f"{e.path.name}: {p}" for e in errors for p in e.problems],
            )
        return mappings


def _with_masking_key(source: Any, key: SecretRef | None) -> Any:
    if isinstance(source, SqlSource) and source.masking_key is None and key is not None:
        return source.model_copy(update={"masking_key": key})
    return source


def _with_paths_under(model: BaseModel, base: Path) -> Any:
    """The model with every relative path in it (mapping, key files, secret files) made
    relative to ``base``, the config file's folder."""
    update: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path):
            update[name] = (base / value).resolve()
        elif isinstance(value, BaseModel):
            update[name] = _with_paths_under(value, base)
    return model.model_copy(update=update)


class Settings(BaseSettings):
    """Process-wide settings from the environment (prefix ``DSRFLOW_``)."""

    model_config = SettingsConfigDict(env_prefix="DSRFLOW_")

    config: Path = Field(default=Path("dsrflow.yaml"), description="the config file to use")


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path) if path else Settings().config
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"config file {path} cannot be read ({exc.strerror}); run `dsr sandbox up` to write "
            "one, or pass --config"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  - {'.'.join(str(p) for p in e['loc'] if p != 'sql')}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError(f"config file {path} is invalid:\n" + "\n".join(lines)) from exc
    return config.resolved(path.resolve().parent)

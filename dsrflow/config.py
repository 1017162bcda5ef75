"""The dsrflow configuration file: the controller, the sources and where their mappings are.

A config is YAML. Relative paths inside it are resolved against the file's own folder. Secrets
never sit in it: a source names the environment variable that holds its database URL, and
secrets (API tokens, the masking key) are references: ``{env: NAME}``, ``{file: PATH}`` (mode
0600) or ``{prefect_secret: block}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.registry import source_union
from connectors.settings import SourceSettings
from dsrflow.errors import ConfigError
from dsrflow.handover_settings import DeliveryPolicy, IdentityPolicy
from dsrflow.identifiers import email_key, lookalike_reason, normalise_email
from dsrflow.intake_config import IntakeSettings
from dsrflow.language import Language
from dsrflow.manual import ManualSource, unique_names
from dsrflow.mapping import BaseMapping, MappingError, load_mapping
from dsrflow.secrets import SecretRef, SecretUnavailable
from dsrflow.strict import StrictModel
from dsrflow.yaml_safe import safe_load


class Recipient(StrictModel):
    """Art. 15(1)(c): who receives the data, and in what role."""

    name: str
    role: Literal["processor", "controller", "joint_controller"]
    purpose: str
    country: str | None = None
    safeguards: str | None = Field(default=None, description="e.g. EU standard contractual clauses")


class SupervisoryAuthority(StrictModel):
    name: str = "Datatilsynet"
    url: str = "https://www.datatilsynet.no"
    address: str = "Postboks 458 Sentrum, 0105 Oslo, Norway"


class InformationOfficer(StrictModel):
    """The person the privacy policy names as in charge of data protection questions.

    Not necessarily a data protection officer in the sense of Art. 37 (``dpo_email``): a
    controller that need not appoint one may still name whom to ask."""

    name: str = Field(min_length=1, description="the officer's name, as the policy gives it")
    email: str = Field(description="the officer's address for data protection questions")

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return normalise_email(value)


class Controller(StrictModel):
    """Who answers for the processing; printed in every export (Art. 13/15)."""

    name: str = Field(description="the controller's legal name")
    address: str = Field(description="postal address")
    contact_email: str = Field(description="where subjects write; printed in every answer")
    dpo_email: str | None = Field(
        default=None, description="the data protection officer (Art. 37-39), if one is appointed"
    )
    information_officer: InformationOfficer | None = Field(
        default=None,
        description="the person in charge of data protection questions, by name and address, "
        "as the privacy policy names them; printed in every export",
    )
    own_addresses: list[str] = Field(
        default_factory=list,
        description="every other address that is the controller's own (e.g. a second contact "
        "address the policy gives); with contact_email, dpo_email and the information "
        "officer's address these are the controller's, never a third person's (is_own_address)",
    )
    own_domains: list[str] = Field(
        default_factory=list,
        description="domains all of whose addresses are the controller's own; exact (a "
        "subdomain is listed on its own), compared in IDNA lower-case form. List a domain "
        "only if nobody but the controller's own people and mailboxes has addresses in it",
    )
    recipients: list[Recipient] = Field(
        default_factory=list, description="Art. 15(1)(c): processors and other recipients"
    )
    supervisory_authority: SupervisoryAuthority = Field(
        default_factory=SupervisoryAuthority,
        description="Art. 15(1)(f): where the subject may complain",
    )
    automated_decision_making: str = Field(
        default="none: no decision about the subject is made solely by automated means",
        description="Art. 15(1)(h): automated decisions and profiling, or that there are none",
    )

    @field_validator("own_addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        # Strict: a look-alike or invalid address here would silently never match.
        return list(dict.fromkeys(normalise_email(v) for v in values))

    @field_validator("own_domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        domains: list[str] = []
        for value in values:
            if "@" in value:
                raise ValueError(f"{value!r} is an address, not a domain: use own_addresses")
            # The domain's key is the one every address in it gets (dsrflow/identifiers.py).
            key = normalise_email(f"postmaster@{value}").rpartition("@")[2]
            if key not in domains:
                domains.append(key)
        return domains

    def own_address_keys(self) -> frozenset[str]:
        """The keys (``email_key``) of every address the config names as the controller's."""
        named = [self.contact_email, self.dpo_email, *self.own_addresses]
        if self.information_officer:
            named.append(self.information_officer.email)
        return frozenset(k for k in map(email_key, named) if k)

    def is_own_address(self, raw: object) -> bool:
        """Whether an address found in data is the controller's own: by its key, exactly; a
        look-alike of an own address (or of an address in an own domain) is not."""
        key = email_key(raw)
        if key is None or lookalike_reason(key):
            return False
        return key in self.own_address_keys() or key.rpartition("@")[2] in self.own_domains


if TYPE_CHECKING:
    Source = SourceSettings
else:  # every kind's settings, told apart by ``kind`` (connectors/registry.py)
    Source = source_union()


class ApprovalPolicy(StrictModel):
    """How changing requests are approved."""

    four_eyes: bool = Field(
        default=False,
        description="the officer who approves must not be the one who opened the request",
    )
    timeout_hours: int = Field(
        default=72, gt=0, description="how long a paused request waits for the officer"
    )


class Config(StrictModel):
    controller: Controller
    sources: dict[str, Source] = Field(min_length=1)
    phone_region: str = Field(default="NO", description="region of phone numbers given without +")
    language: Language = Field(
        default="nb",
        description="the language of letters to subjects (nb: Norwegian bokmål, en: English) "
        "unless a request's letters chose the other; the subject's pages show it first",
    )
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
    identity: IdentityPolicy = Field(
        default_factory=IdentityPolicy,
        description="Art. 12(6): how the requester's identity is verified (dsrflow/identity.py)",
    )
    delivery: DeliveryPolicy = Field(
        default_factory=DeliveryPolicy,
        description="how an export is delivered to the subject (dsrflow/delivery.py)",
    )
    coverage_max_age_days: int = Field(
        default=30,
        gt=0,
        description="an access request warns when the last coverage report (`dsr coverage`, "
        "the coverage-check deployment) is older than this many days, has open findings, or "
        "does not exist",
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
    intake: IntakeSettings = Field(
        default_factory=IntakeSettings,
        description="where the scheduled intake flow reads new requests: a service desk's "
        "request type and a mailbox folder (neither by default)",
    )
    manual_sources: list[ManualSource] = Field(
        default_factory=list,
        description="places without an API (mobile devices, paper): each request they apply "
        "to waits for the officer's answer per place, and is not complete without it "
        "(dsrflow/manual.py)",
    )

    @field_validator("manual_sources")
    @classmethod
    def _manual_names(cls, value: list[ManualSource]) -> list[ManualSource]:
        return unique_names(value)

    @model_validator(mode="after")
    def _intake_sources(self) -> Config:
        problems = self.intake.problems(self.sources)
        if problems:
            raise ValueError("; ".join(problems))
        return self

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
    # A source whose settings take a masking key (SQL) gets the config's unless it names one.
    if "masking_key" in type(source).model_fields and source.masking_key is None and key:
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
        data = safe_load(path.read_text(encoding="utf-8"))
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

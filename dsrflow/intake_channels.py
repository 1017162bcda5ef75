"""The intake's channels, read with the config's sources: the service desk's request type
and the mailbox folder of ``intake`` (dsrflow/intake_config.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from connectors.jira.client import JiraClient
from connectors.jira.intake import privacy_requests
from connectors.jira.settings import JiraSource
from connectors.mail.client import GraphSession
from connectors.mail.intake import MailIntake
from connectors.mail.settings import MailSource
from dsrflow.errors import ConfigError
from dsrflow.intake import Incoming

if TYPE_CHECKING:
    from dsrflow.config import Config


def read_channels(config: Config, now: dt.datetime | None = None) -> list[Incoming]:
    """Everything the configured channels hold now (the ledger decides what is new). A channel
    that cannot be read raises: a missing answer is not "nothing arrived"."""
    intake = config.intake
    if intake.servicedesk is None and intake.mailbox is None:
        raise ConfigError(
            "the config has no intake channel: give intake.servicedesk and/or intake.mailbox"
        )
    now = now or dt.datetime.now(dt.UTC)
    found: list[Incoming] = []
    if intake.servicedesk is not None:
        desk = intake.servicedesk
        source = config.sources[desk.source]
        assert isinstance(source, JiraSource)  # checked when the config was loaded
        client = JiraClient(desk.source, source)
        try:
            found += privacy_requests(client, desk.project, desk.request_type)
        finally:
            client.close()
    if intake.mailbox is not None:
        box = intake.mailbox
        settings = config.sources[box.source]
        assert isinstance(settings, MailSource)
        session = GraphSession(box.source, settings)
        try:
            reader = MailIntake(session, box.mailbox, box.folder)
            found += reader.received_since(now - dt.timedelta(days=intake.lookback_days))
        finally:
            session.close()
    return found

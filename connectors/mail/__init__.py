"""Office 365 mail through Microsoft Graph (msgraph-sdk), app-only.

``settings`` (the config entry), ``mapping`` (the declarative mapping), ``connector``; the SDK is
imported only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.mail.mapping import MailMapping
from connectors.mail.settings import MailSource
from connectors.registry import Kind

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: MailSource, mapping: MailMapping, context: SourceContext
) -> Connector:
    from connectors.mail.connector import MailConnector

    return MailConnector(name, mapping, source, context=context)


KIND = Kind(name="mail", settings=MailSource, mapping=MailMapping, open=open_connector)

"""A Jira Service Management desk through the `jira` client (Cloud or Data Center).

``settings`` (the config entry), ``mapping`` (the declarative mapping and its erasure plan),
``connector`` (the facade), over ``client`` (the one module touching the SDK) and ``operations``
(issues and comments: what every right shares); ``subject`` (the subject's accounts), ``desks``
(service desks and customers), ``accounts`` (a customer's own account), one module per right:
``discovery``, ``erasure``, ``rectification`` (and restriction), ``retention``, ``permissions``
(preflight); ``text`` (people in texts), ``history`` (what the changelog keeps). The SDK is
imported only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.jira.mapping import JiraMapping
from connectors.jira.settings import JiraSource
from connectors.registry import Kind

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: JiraSource, mapping: JiraMapping, context: SourceContext
) -> Connector:
    from connectors.jira.connector import JiraConnector

    return JiraConnector(name, mapping, source, context=context)


KIND = Kind(name="jira", settings=JiraSource, mapping=JiraMapping, open=open_connector)

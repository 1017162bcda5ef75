"""Google Analytics (GA4) through the User Deletion API: delete only.

``settings`` (the config entry), ``mapping`` (the category, the access note, one deletion per
Analytics id of the subject), ``client`` (the one module touching google-api-python-client),
``connector`` (erasure). The SDK is imported only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.analytics.mapping import AnalyticsMapping
from connectors.analytics.settings import AnalyticsSource
from connectors.registry import Kind

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: AnalyticsSource, mapping: AnalyticsMapping, context: SourceContext
) -> Connector:
    from connectors.analytics.connector import AnalyticsConnector

    return AnalyticsConnector(name, mapping, source)


KIND = Kind(
    name="analytics", settings=AnalyticsSource, mapping=AnalyticsMapping, open=open_connector
)

"""SQL databases through SQLAlchemy (SQLite, PostgreSQL, …): tables mapped declaratively.

``settings`` (the config entry), ``mapping`` (the declarative mapping and its plans),
``connector`` (the facade), over ``client`` (the engine) and ``operations`` (the mapped tables);
one module per right: ``discovery``, ``row_changes``, ``retention``, ``preflight``. SQLAlchemy
is imported only when a connector is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.registry import Kind
from connectors.sql.mapping import SqlMapping
from connectors.sql.settings import SqlSource

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.third_parties import SourceContext


def open_connector(
    name: str, source: SqlSource, mapping: SqlMapping, context: SourceContext
) -> Connector:
    from connectors.masking import MaskingKey
    from connectors.sql.connector import SqlConnector

    return SqlConnector(
        name,
        mapping,
        source.database_url(),
        batch_size=source.batch_size,
        timezone=source.timezone,
        context=context,
        mapping_path=source.mapping,
        masking_key=MaskingKey(source.masking_key),
    )


KIND = Kind(name="sql", settings=SqlSource, mapping=SqlMapping, open=open_connector)

"""A stateful Microsoft Graph (v1.0) emulator for Exchange Online mail: users, messages with
``$search``/``$filter``/``$select``/``$top`` and ``@odata.nextLink`` paging, attachments, delete,
permanentDelete and JSON ``$batch``, with Graph's error shapes."""

from sandbox.emulators.graph.app import create_app
from sandbox.emulators.graph.store import GraphStore

__all__ = ["GraphStore", "create_app"]

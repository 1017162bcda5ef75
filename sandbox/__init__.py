"""The sandbox: stateful emulators of Graph, Drive/Sheets and Jira on 127.0.0.1, an on-prem
database, and the seed data or fixture files that fill them."""

from dsrflow.errors import DsrflowError


class FixtureError(DsrflowError, ValueError):
    """A fixture file or folder that cannot be loaded; the message names it and what is wrong."""

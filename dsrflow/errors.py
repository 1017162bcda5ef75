"""One base for every error a person can cause or meet (a bad identifier, a broken mapping or
config, a source that is down, a ledger that cannot be opened): the command line turns exactly
these into one ``error:`` line and exit status 2. Anything else is a bug and keeps its
traceback."""

from __future__ import annotations


class DsrflowError(Exception):
    """An error whose message says what is wrong and what to do; no traceback needed."""


class ConfigError(DsrflowError, ValueError):
    """The config file is missing or wrong; the message names the file and the key."""

"""What the tests that start the officer's stack (``dsrflow.stack``) share: a free port and
the environment its worker and flow runs need."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def stack_environment() -> Iterator[None]:
    """Around ``stack.up`` only: its processes copy the environment when they start."""
    with pytest.MonkeyPatch.context() as mp:
        # The erasure flow's hmac masking needs a key.
        mp.setenv("DSRFLOW_HMAC_KEY", "stack-test-key-not-secret")
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        # The worker looks for new runs every 2 s rather than 10 s: a shorter test, same path.
        mp.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
        yield

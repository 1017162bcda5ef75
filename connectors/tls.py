"""One verifying TLS context per process for the httpx-based clients (Graph, Marketplace).

httpx builds a new ``ssl.SSLContext`` for every client and loads the whole CA bundle into it
(~60 ms), even for an ``http://`` emulator; one command opens each source up to three times.
The context is httpx's own default (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
made once: verification is exactly as strict as each client's own would be. An
``SSLContext`` may be shared between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def verifying_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

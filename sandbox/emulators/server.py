"""Serving an emulator's ASGI app on 127.0.0.1 from a background thread (uvicorn).

Every exchange an emulator serves can be handed to ``OBSERVERS`` (the tests register a check
of each answer against the vendor's published schema: tests/support/vendor_schemas/).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.emulators.faults import with_connection_abort


@dataclass(frozen=True)
class Exchange:
    """One request an emulator answered, as the client saw it."""

    emulator: str
    method: str
    path: str
    query: str
    request_body: bytes
    status: int
    content_type: str
    body: bytes


OBSERVERS: list[Callable[[Exchange], None]] = []


def observed(app: ASGIApp, emulator: str) -> ASGIApp:
    """The app, handing each complete exchange to every observer (none: no cost but a check)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not OBSERVERS:
            await app(scope, receive, send)
            return
        asked: list[bytes] = []
        chunks: list[bytes] = []
        status, content_type = 0, ""

        async def receiving() -> Message:
            message = await receive()
            asked.append(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers") or [])
                content_type = headers.get(b"content-type", b"").decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    exchange = Exchange(
                        emulator=emulator,
                        method=scope["method"],
                        path=scope["path"],
                        query=scope.get("query_string", b"").decode("latin-1"),
                        request_body=b"".join(asked),
                        status=status,
                        content_type=content_type,
                        body=b"".join(chunks),
                    )
                    for observer in OBSERVERS:
                        observer(exchange)
            await send(message)

        await app(scope, receiving, sending)

    return wrapped


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmulatorServer:
    """One emulator on a loopback port; ``with EmulatorServer(app) as url: ...``."""

    def __init__(self, app: ASGIApp, *, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("emulators listen on the loopback interface only")
        self.name = name
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            with_connection_abort(observed(app, name)),
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"emulator-{name}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator {self.name} did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

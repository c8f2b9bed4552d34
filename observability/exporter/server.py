"""Serves /metrics, /sd and /healthz with uvicorn. Binds 127.0.0.1 unless told otherwise; with a web config,
over TLS and/or behind basic auth (observability/exporter/access.py), every key of it applied
(observability/exporter/exporter_web_config.py). Each connection is bounded (connection_limits.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from observability.exporter.access import PROTECTED_PATHS, BasicAuth, Verdict
from observability.exporter.collection import SnapshotRegistry
from observability.exporter.connection_limits import (
    KEEP_ALIVE_S,
    MAX_HEADER_BYTES,
    REQUEST_HEAD_TIMEOUT_S,
    BoundedH11Protocol,
    ConnectionLimits,
)
from observability.exporter.exporter_web_config import server_context
from observability.exporter.exposition import Exposition
from observability.exporter.request_rate import TokenBucket
from observability.exporter.web_config import WebConfig

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PATHS = ("/metrics", "/sd", "/healthz", "/")
METHODS = ("GET", "HEAD")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


async def _plain(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [_TEXT, *headers]})
    await send({"type": "http.response.body", "body": body})


def _service_discovery(targets_file: Path | None) -> bytes:
    """The host's fleet target list in Prometheus' HTTP SD format (the same JSON as file_sd)."""
    if targets_file is None:
        return b"[]"
    try:
        return targets_file.read_bytes()
    except OSError:
        return b"[]"


async def _unauthorized(send: Send) -> None:
    await _plain(send, 401, b"Unauthorized\n", (b"www-authenticate", b'Basic realm="serve-with-monitoring exporter"'))


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """http_server_config.headers, added to every response as exporter-toolkit adds them."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def make_app(
    registry: SnapshotRegistry,
    targets_file: Path | None = None,
    auth: BasicAuth | None = None,
    headers: dict[str, str] | None = None,
    rate: TokenBucket | None = None,
) -> App:
    exposition = Exposition(registry)
    extra_headers = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]

    async def metrics(scope: Scope, send: Send) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        body, content_type, gzipped = exposition.body(
            headers.get("accept", ""), "gzip" in headers.get("accept-encoding", "")
        )
        response_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if gzipped:
            response_headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if extra_headers:
            send = _with_headers(send, extra_headers)
        if rate is not None and not rate.take():
            await _plain(send, 429, b"Too Many Requests\n")
            return
        path = scope.get("path", "")
        if path not in PATHS:
            await _plain(send, 404, b"not found\n")
            return
        if scope.get("method") not in METHODS:
            await _plain(send, 405, b"Method Not Allowed\n", (b"allow", ", ".join(METHODS).encode()))
            return
        if auth is not None and path in PROTECTED_PATHS:
            authorization = next((value for name, value in scope["headers"] if name.lower() == b"authorization"), b"")
            verdict = await auth.verdict(authorization)
            if verdict is Verdict.BUSY:
                await _plain(send, 429, b"Too many password checks under way; try again\n", (b"retry-after", b"1"))
                return
            if verdict is not Verdict.ALLOWED:
                await _unauthorized(send)
                return
        if path == "/metrics":
            await metrics(scope, send)
        elif path == "/healthz":
            await _plain(send, 200, b"ok\n")
        elif path == "/sd":
            body = _service_discovery(targets_file)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
        else:
            await _plain(send, 200, b"serve-with-monitoring exporter: /metrics, /healthz, /sd\n")

    return app


class QuietServer(uvicorn.Server):
    """uvicorn's server, without its 0.1 s tick: an idle exporter sleeps until a request or a signal.

    uvicorn wakes ten times a second to refresh its Date header and check for a stop; with no Date
    header to keep, that tick was most of the exporter's idle CPU. Stop signals go through the event
    loop instead, which wakes at once.
    """

    def __init__(self, config: uvicorn.Config, handshake_timeout_s: float = REQUEST_HEAD_TIMEOUT_S) -> None:
        super().__init__(config)
        self._handshake_timeout_s = handshake_timeout_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # main_loop below handles SIGTERM and SIGINT

    async def startup(self, sockets: list[Any] | None = None) -> None:
        if self.config.ssl is None:
            await super().startup(sockets)
            return
        # uvicorn has no setting for it, and asyncio's default lets a client that never finishes its TLS
        # handshake hold a socket for 60 s, before the connection bounds see it. Only this call is changed.
        loop = asyncio.get_running_loop()
        loop.create_server = functools.partial(  # type: ignore[method-assign]
            type(loop).create_server, loop, ssl_handshake_timeout=self._handshake_timeout_s
        )
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers, once
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        self.should_exit = True


class _ExporterConfig(uvicorn.Config):
    """uvicorn's Config with our own SSLContext: uvicorn's settings cannot say min/max version, or which
    suites (and before 0.48 its default offered CBC with SHA-1)."""

    def __init__(self, app: App, tls: ssl.SSLContext | None, **settings: Any) -> None:
        super().__init__(app, **settings)
        self._tls = tls

    def load(self) -> None:
        super().load()
        self.ssl = self._tls


def exporter_config(
    app: App, host: str, port: int, web: WebConfig | None = None, limits: ConnectionLimits | None = None
) -> uvicorn.Config:
    """uvicorn's settings for the exporter: HTTP/1.1 through h11 whatever else is installed (httptools would
    read a header of any size), no websockets, bounded connections and heads, and the web config's TLS."""
    limits = limits or ConnectionLimits()
    if web is not None and web.client_allowed_sans is not None:
        limits.allowed_client_names = web.client_allowed_sans
    return _ExporterConfig(
        app,
        server_context(web) if web is not None and web.tls else None,
        host=host,
        port=port,
        http=functools.partial(BoundedH11Protocol, limits=limits),  # type: ignore[arg-type]
        ws="none",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
    )


def serve(
    registry: SnapshotRegistry,
    host: str,
    port: int,
    targets_file: Path | None = None,
    web: WebConfig | None = None,
) -> None:
    auth = BasicAuth(web.users) if web is not None and web.auth else None
    limit = web.rate_limit if web is not None else None
    rate = TokenBucket(limit.interval_s, limit.burst) if limit is not None and limit.interval_s > 0 else None
    app = make_app(registry, targets_file, auth, web.headers if web is not None else None, rate)
    limits = ConnectionLimits()
    try:
        QuietServer(exporter_config(app, host, port, web, limits), limits.request_head_timeout_s).run()
    finally:
        if auth is not None:
            auth.close()

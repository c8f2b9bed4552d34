"""Serves /metrics, /sd and /healthz with uvicorn. Binds 127.0.0.1 unless told otherwise; with a web config,
over TLS and/or behind basic auth (observability/exporter/access.py)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from observability.exporter.access import PROTECTED_PATHS, BasicAuth
from observability.exporter.collection import SnapshotRegistry
from observability.exporter.exposition import Exposition
from observability.exporter.web_config import WebConfig

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
    )
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
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"www-authenticate", b'Basic realm="serve-with-monitoring exporter"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"Unauthorized\n"})


def make_app(
    registry: SnapshotRegistry, targets_file: Path | None = None, auth: BasicAuth | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    exposition = Exposition(registry)

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
        path = scope.get("path", "")
        if auth is not None and path in PROTECTED_PATHS:
            authorization = next(
                (value.decode("latin-1") for name, value in scope["headers"] if name.lower() == b"authorization"), ""
            )
            if not auth.allows(authorization):
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
        elif path == "/":
            await _plain(send, 200, b"serve-with-monitoring exporter: /metrics, /healthz, /sd\n")
        else:
            await _plain(send, 404, b"not found\n")

    return app


class QuietServer(uvicorn.Server):
    """uvicorn's server, without its 0.1 s tick: an idle exporter sleeps until a request or a signal.

    uvicorn wakes ten times a second to refresh its Date header and check for a stop; with no Date
    header to keep, that tick was most of the exporter's idle CPU. Stop signals go through the event
    loop instead, which wakes at once.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # main_loop below handles SIGTERM and SIGINT

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


def _tls_options(web: WebConfig | None) -> dict[str, Any]:
    if web is None or not web.tls:
        return {}
    required = web.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert")
    return {
        "ssl_certfile": str(web.cert_file),
        "ssl_keyfile": str(web.key_file),
        "ssl_ca_certs": str(web.client_ca_file) if web.client_ca_file else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED
        if required
        else (ssl.CERT_OPTIONAL if web.client_ca_file else ssl.CERT_NONE),
    }


def serve(
    registry: SnapshotRegistry,
    host: str,
    port: int,
    targets_file: Path | None = None,
    web: WebConfig | None = None,
) -> None:
    auth = BasicAuth(web.users) if web is not None and web.auth else None
    config = uvicorn.Config(
        make_app(registry, targets_file, auth),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
        **_tls_options(web),
    )
    QuietServer(config).run()

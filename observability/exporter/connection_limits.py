"""What one connection may hold of the exporter, and for how long: uvicorn's HTTP/1.1 protocol (h11) with the
bounds it lacks.

uvicorn closes a connection that idles after a response (keep-alive), but not one that never completes its
request: a client that connects and sends nothing, or a byte of header now and then, held its socket for
ever, and 160 of them used up the file limit. Here:
- a request's head must arrive whole within REQUEST_HEAD_TIMEOUT_S of the connection (or of the last
  response), however it trickles in; a TLS handshake has the same time (server.py);
- at most `max_connections` are open, a quarter of the file limit: past that, the connection that has waited
  longest without a request in progress is dropped. A scraper sends its request the moment it connects, so
  the one dropped is, in practice, one that holds a socket and asks nothing;
- a request head is at most MAX_HEADER_BYTES (h11's own bound, set in server.py; larger gets 400);
- with client_allowed_sans, a client whose certificate names none of them is dropped after the handshake.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from observability.exporter.exporter_web_config import client_name_allowed

REQUEST_HEAD_TIMEOUT_S = 10.0  # Prometheus sends its request as it connects; its scrape timeout is at most 10 s
KEEP_ALIVE_S = 5  # uvicorn's default, said here: an idle connection after a response
MAX_HEADER_BYTES = 16 * 1024  # h11's default: a scrape's head is a few hundred bytes


def default_max_connections() -> int:
    """A quarter of the soft file limit, between 16 and 512: the collectors' /proc reads keep the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 4096
    return max(16, min(512, soft // 4))


@dataclass
class ConnectionLimits:
    request_head_timeout_s: float = REQUEST_HEAD_TIMEOUT_S
    max_connections: int = field(default_factory=default_max_connections)
    allowed_client_names: tuple[str, ...] | None = None  # client_allowed_sans
    open: set[BoundedH11Protocol] = field(default_factory=set, repr=False)
    # Those with no request in progress, in the order they started waiting: the first is the one to drop.
    waiting: dict[BoundedH11Protocol, None] = field(default_factory=dict, repr=False)

    def make_room(self) -> None:
        while len(self.open) > self.max_connections and self.waiting:
            next(iter(self.waiting)).drop()


class BoundedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        names = self._limits.allowed_client_names
        if names is not None and not client_name_allowed(transport.get_extra_info("peercert"), names):
            transport.abort()
            return
        self._limits.open.add(self)
        self._settle()
        self._limits.make_room()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._settle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._settle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def drop(self) -> None:
        self._forget()
        self.transport.abort()

    def _forget(self) -> None:
        self._limits.open.discard(self)
        self._limits.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _settle(self) -> None:
        """Starts the clock when the connection begins to wait for a request; stops it when one is in progress.
        The clock is not restarted by bytes that arrive: a head sent a byte at a time has the same time."""
        in_progress = self.cycle is not None and not self.cycle.response_complete
        if in_progress or self.transport.is_closing():
            self._limits.waiting.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
        elif self not in self._limits.waiting:
            self._limits.waiting[self] = None
            self._deadline = self.loop.call_later(self._limits.request_head_timeout_s, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self in self._limits.waiting:
            self.drop()

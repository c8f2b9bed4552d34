"""Host and port handling in one place: what a wildcard bind is, what to dial, how to write host:port."""

from __future__ import annotations

from launcher import defaults

WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def dial_host(bound_host: str) -> str:
    """Where a local client reaches a server bound to `bound_host`."""
    if bound_host in WILDCARD_HOSTS:
        return "::1" if ":" in bound_host else defaults.LOOPBACK
    return bound_host.strip("[]")


def host_port(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets as URLs and Prometheus targets need."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

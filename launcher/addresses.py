"""Host and port handling in one place: what a wildcard bind is, what to dial, how to write host:port."""

from __future__ import annotations

from launcher import defaults

WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback_host(host: str) -> bool:
    """Bound to this host only. 127.0.0.0/8 is all loopback, but only these spellings are what people use."""
    host = host.strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def is_exposed(bound_host: str) -> bool:
    """Reachable from other hosts: a wildcard, or any address that is not loopback."""
    return bound_host in WILDCARD_HOSTS or not is_loopback_host(bound_host)


def dial_host(bound_host: str) -> str:
    """Where a local client reaches a server bound to `bound_host`."""
    if bound_host in WILDCARD_HOSTS:
        return "::1" if ":" in bound_host else defaults.LOOPBACK
    return bound_host.strip("[]")


def host_port(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets as URLs and Prometheus targets need."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

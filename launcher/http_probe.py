"""Small HTTP GETs for health checks: a status code or None, never an exception.

Plain http.client rather than urllib: the launcher probes every few seconds for as long as it runs, and
urllib's opener machinery costs about three times the CPU of the request itself (docs/benchmarks.md).
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse

_UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 - probing our own child on loopback
_MAX_STATUS_BODY = 64 * 1024


def _get(url: str, timeout: float, authorization: str | None, limit: int | None) -> tuple[int, bytes] | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=_UNVERIFIED
        )
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        return None
    headers = {"User-Agent": "serve-with-monitoring", "Connection": "close"}
    if authorization:
        headers["Authorization"] = authorization
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read() if limit is None else response.read(limit)
        return response.status, body
    except (http.client.HTTPException, OSError, ValueError):
        return None
    finally:
        connection.close()


def http_status(url: str, timeout: float, authorization: str | None = None) -> int | None:
    answer = _get(url, timeout, authorization, _MAX_STATUS_BODY)
    return answer[0] if answer else None


def http_get_text(url: str, timeout: float, authorization: str | None = None) -> str | None:
    """The body of a 200 answer; None for any other status or no answer."""
    answer = _get(url, timeout, authorization, None)
    if answer is None or answer[0] != 200:
        return None
    return answer[1].decode(errors="replace")

"""Small HTTP GETs for health checks: a status code or None, never an exception."""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request

_UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 - probing our own child on loopback


def _request(url: str, authorization: str | None) -> urllib.request.Request:
    headers = {"User-Agent": "serve-with-monitoring"}
    if authorization:
        headers["Authorization"] = authorization
    return urllib.request.Request(url, method="GET", headers=headers)


def http_status(url: str, timeout: float, authorization: str | None = None) -> int | None:
    request = _request(url, authorization)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_UNVERIFIED) as response:
            response.read(64 * 1024)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None


def http_get_text(url: str, timeout: float, authorization: str | None = None) -> str | None:
    request = _request(url, authorization)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_UNVERIFIED) as response:
            return response.read().decode(errors="replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None

"""Parsers for launcher option values. Each raises ValueError with a message fit for one line."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path


def seconds(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise ValueError(f"expected a number of seconds > 0, got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(str(text), 10)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a whole number >= 0, got {text!r}")
    return value


def positive_count(text: str) -> int:
    value = count(text)
    if value == 0:
        raise ValueError(f"expected a whole number >= 1, got {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(str(text), 10)
    except (TypeError, ValueError):
        raise ValueError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"expected a TCP port between 1 and 65535, got {text!r}")
    return value


def path(text: str) -> Path:
    if not str(text).strip():
        raise ValueError("expected a path, got an empty string")
    return Path(str(text)).expanduser()


def non_empty(text: str) -> str:
    if not str(text).strip():
        raise ValueError("expected a value, got an empty string")
    return str(text)


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    parse.__name__ = "one of " + "|".join(allowed)
    return parse


def ratio(text: str) -> float:
    """A fraction strictly between 0 and 1, such as an SLO target (0.99)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a fraction such as 0.99, got {text!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"expected a fraction between 0 and 1 (exclusive), such as 0.99, got {text!r}")
    return value


def byte_size(text: str) -> str:
    """A size as Prometheus writes it (--storage.tsdb.retention.size): 512MB, 2GB ..."""
    value = str(text).strip().upper()
    number = value.rstrip("BKMGTPE")
    unit = value[len(number) :]
    if not number.isdigit() or int(number) <= 0 or unit not in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        raise ValueError(f"expected a size such as 512MB or 2GB, got {text!r}")
    return f"{int(number)}{unit}"


def http_url(text: str) -> str:
    parsed = urllib.parse.urlsplit(str(text).strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("expected an http:// or https:// URL")  # the URL itself may hold a token: not echoed
    return str(text).strip()

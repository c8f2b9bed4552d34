"""Parsers for launcher option values. Each raises ValueError with a message fit for one line."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.settings.shown_values import shown


def seconds(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {shown(text)}") from None
    if value < 0 or value != value or value == float("inf"):
        raise ValueError(f"expected a finite number of seconds >= 0, got {shown(text)}")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise ValueError(f"expected a number of seconds > 0, got {shown(text)}")
    return value


def count(text: str) -> int:
    try:
        value = int(str(text), 10)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {shown(text)}") from None
    if value < 0:
        raise ValueError(f"expected a whole number >= 0, got {shown(text)}")
    return value


def positive_count(text: str) -> int:
    value = count(text)
    if value == 0:
        raise ValueError(f"expected a whole number >= 1, got {shown(text)}")
    return value


@dataclass(frozen=True)
class Bounded:
    """A number with both of its bounds declared: the options table uses these only, and a test holds every
    numeric option to them. `off`: 0 is accepted too, and turns the feature off."""

    kind: str  # "a number of seconds", "a whole number"
    low: float
    high: float
    whole: bool = False
    exclusive: bool = False  # both bounds themselves refused: a fraction strictly between 0 and 1
    off: bool = False

    @property
    def __name__(self) -> str:  # argparse names the type in some of its messages
        return self.kind

    def describe(self) -> str:
        span = f"between {self.low:g} and {self.high:g}" + (" (exclusive)" if self.exclusive else "")
        return ("0 (off) or " if self.off else "") + f"{self.kind} {span}"

    def span(self) -> str:
        """For --help: 1-86400, 0 or 1-86400, 0-1 exclusive."""
        return ("0 or " if self.off else "") + f"{self.low:g}-{self.high:g}" + (" exclusive" if self.exclusive else "")

    def __call__(self, text: str) -> float:
        try:
            number: float = int(str(text), 10) if self.whole else float(text)
        except (TypeError, ValueError):
            raise ValueError(f"expected {self.kind}, got {shown(text)}") from None
        if self.off and number == 0:
            return number
        inside = self.low < number < self.high if self.exclusive else self.low <= number <= self.high
        if not inside:  # NaN included: it compares false with everything
            raise ValueError(f"expected {self.describe()}, got {shown(text)}")
        return number


def seconds_between(low: float, high: float, off: bool = False) -> Bounded:
    return Bounded("a number of seconds", low, high, off=off)


def whole_between(low: int, high: int) -> Bounded:
    return Bounded("a whole number", low, high, whole=True)


TCP_PORT = Bounded("a TCP port", 1, 65535, whole=True)
FRACTION = Bounded("a fraction", 0, 1, exclusive=True)
# Money per GPU-hour in any currency; the bound catches a typo, and the rules take only finite numbers.
GPU_HOURLY_COST = Bounded("an amount per GPU-hour", 0, 1e6, exclusive=True)
# Prometheus' size units (--storage.tsdb.retention.size), powers of 1024.
SIZE_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "PB": 2**50, "EB": 2**60}


@dataclass(frozen=True)
class SizeBetween:
    """A size as Prometheus writes it (512MB, 2GB), within both of its bounds (written the same way)."""

    low: str
    high: str
    kind: str = "a size such as 512MB or 2GB"

    @property
    def __name__(self) -> str:
        return self.kind

    def span(self) -> str:
        return f"{self.low}-{self.high}"

    @staticmethod
    def bytes_of(size: str) -> int:
        number = size.rstrip("BKMGTPE")
        return int(number) * SIZE_UNITS[size[len(number) :]]

    def __call__(self, text: str) -> str:
        value = str(text).strip().upper()
        number = value.rstrip("BKMGTPE")
        unit = value[len(number) :]
        if not (number.isascii() and number.isdigit()) or len(number) > 20 or unit not in SIZE_UNITS:
            raise ValueError(f"expected {self.kind}, got {shown(text)}")
        size = f"{int(number)}{unit}"
        if not self.bytes_of(self.low) <= self.bytes_of(size) <= self.bytes_of(self.high):
            raise ValueError(f"expected a size between {self.low} and {self.high}, got {shown(text)}")
        return size


def port(text: str) -> int:
    try:
        value = int(str(text), 10)
    except (TypeError, ValueError):
        raise ValueError(f"expected a TCP port number, got {shown(text)}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"expected a TCP port between 1 and 65535, got {shown(text)}")
    return value


def path(text: str) -> Path:
    if not str(text).strip():
        raise ValueError("expected a path, got an empty string")
    return Path(without_control_characters(str(text), "a path")).expanduser()


def non_empty(text: str) -> str:
    if not str(text).strip():
        raise ValueError("expected a value, got an empty string")
    return str(text)


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {shown(text)}")
        return text

    parse.__name__ = "one of " + "|".join(allowed)
    return parse


def ratio(text: str) -> float:
    """A fraction strictly between 0 and 1, such as an SLO target (0.99)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a fraction such as 0.99, got {shown(text)}") from None
    if not 0 < value < 1:
        raise ValueError(f"expected a fraction between 0 and 1 (exclusive), such as 0.99, got {shown(text)}")
    return value


def byte_size(text: str) -> str:
    """A size as Prometheus writes it (--storage.tsdb.retention.size): 512MB, 2GB ..."""
    value = str(text).strip().upper()
    number = value.rstrip("BKMGTPE")
    unit = value[len(number) :]
    if not number.isdigit() or int(number) <= 0 or unit not in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        raise ValueError(f"expected a size such as 512MB or 2GB, got {shown(text)}")
    return f"{int(number)}{unit}"


def http_url(text: str) -> str:
    url = without_control_characters(str(text).strip(), "an http:// or https:// URL")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("expected an http:// or https:// URL")  # the URL itself may hold a token: not echoed
    return url


# Query parameters whose value is a credential by their name: Prometheus 2.42 writes a remote-write URL whole
# into its log and into the `url` label of its prometheus_remote_storage_* metrics, which it also sends on.
_SECRET_PARAMETER = re.compile(r"token|key|secret|passw|auth|sig|credential", re.I)


def remote_write_url(text: str) -> str:
    """An http(s) URL with no credential in it: not as user:password@ (Prometheus logs that in the clear), nor
    as a query parameter named like one. Credentials go in --remote-write-config, read from files."""
    url = http_url(text)
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is not None or parsed.password is not None:
        raise ValueError(
            "expected a URL without user:password@ (Prometheus logs it whole); give basic_auth with a"
            " password_file in --remote-write-config"
        )
    parameters = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    named = [key for key, _ in parameters if _SECRET_PARAMETER.search(key)]
    if named:
        raise ValueError(
            f"expected a URL without a credential in it; query parameter {shown(named[0])} looks like one"
            " (Prometheus logs the URL and exports it as a label): use --remote-write-config with a credentials file"
        )
    return url


# A label value written into Prometheus' external_labels: plain enough for any central store, a dashboard
# variable and a shell, and never a second line.
_LABEL_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")


def label_value(text: str) -> str:
    value = str(text).strip()
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            "expected a name of letters, digits and . _ : / - (starting with a letter or digit, at most 128),"
            f" got {shown(text)}"
        )
    return value


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: each ends a line somewhere (a YAML
# or unit file, a log, a terminal) or rewrites what a terminal shows.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def without_control_characters(text: str, what: str = "a value") -> str:
    """The text itself, unless a character in it could break a line of a file it is written into. The value is
    not echoed: it may hold a token, and its newline would break the one line of the error too."""
    found = _CONTROL_CHARACTERS.search(text)
    if found:
        raise ValueError(
            f"expected {what} without control characters; found U+{ord(found.group()):04X} at position {found.start()}"
        )
    return text


def name(text: str) -> str:
    """A host name, an address, an executable's name: anything written into a file as one token of text."""
    return without_control_characters(non_empty(text), "a name")

"""The exporter-toolkit web configuration (node_exporter's and Prometheus' --web.config.file): read, checked
and written back here, every key of the format, for the exporter and Prometheus alike.

    tls_server_config:
      cert_file: server.crt             # or cert: inline PEM
      key_file: server.key              # or key: inline PEM
      client_ca_file: ca.crt            # or client_ca: inline PEM; verify client certificates
      client_auth_type: RequireAndVerifyClientCert
      client_allowed_sans: [scraper.example]
      min_version: TLS12                # TLS10 .. TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
      prefer_server_cipher_suites: true
      curve_preferences: [X25519]
    http_server_config:
      http2: false
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      alice: $2b$12$...                 # bcrypt hashes only
    rate_limit: {interval: 100ms, burst: 10}

A key outside the format is refused here. Whether a server applies every key it is given is for that server
to say: the exporter's answer is in exporter_web_config.py; Prometheus' is `promtool check web-config`.
Relative paths are relative to the file, as exporter-toolkit reads them.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from observability.exporter.tls_names import CIPHER_SUITES, CURVES, TLS_VERSIONS

CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_OLD_CLIENT_AUTH_TYPES = ("RequireClientCert",)  # exporter-toolkit's older name for RequireAnyClientCert
CLIENT_CERT_REQUIRED = ("RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert")
# The response headers exporter-toolkit lets a web config set, and the values it accepts (None: any).
SECURITY_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_KEYS = ("http2", "headers")
_RATE_LIMIT_KEYS = ("interval", "burst")
_BCRYPT_ALPHABET = frozenset("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_MIN_COST, _MAX_COST = 4, 31  # what bcrypt itself accepts
# The launcher's own user is hashed at its users' cost, so that its name takes as long to refuse as theirs,
# but never above this: a cost of 14 takes about a second, and every launcher start pays it once.
_MAX_LAUNCHER_COST = 14
_DEFAULT_COST = 10
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_DURATION = re.compile(f"(?:{_DURATION_PART.pattern})+")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateLimit:
    interval: str | int  # as written: a Go duration ("100ms"), or 0
    interval_s: float  # 0: no limit
    burst: int


@dataclass(frozen=True)
class WebConfig:
    source: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash
    cert: str | None = None  # inline PEM, in place of cert_file
    key: str | None = None  # inline PEM, in place of key_file
    client_ca: str | None = None  # inline PEM, in place of client_ca_file
    client_allowed_sans: tuple[str, ...] | None = None
    min_version: str | None = None
    max_version: str | None = None
    cipher_suites: tuple[str, ...] | None = None
    prefer_server_cipher_suites: bool | None = None
    curve_preferences: tuple[str, ...] | None = None
    http2: bool | None = None
    headers: dict[str, str] | None = None
    rate_limit: RateLimit | None = None

    @property
    def tls(self) -> bool:
        return self.cert_file is not None or self.cert is not None

    @property
    def auth(self) -> bool:
        return bool(self.users)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def verifies_clients(self) -> bool:
        return self.client_ca_file is not None or self.client_ca is not None

    @property
    def highest_cost(self) -> int:
        """The bcrypt cost of the slowest user's hash: an unknown name is checked at this cost."""
        return max((bcrypt_cost(hashed) for hashed in self.users.values()), default=_DEFAULT_COST)

    def with_user(self, name: str, password: str) -> WebConfig:
        import bcrypt  # here: an exporter without basic auth needs no bcrypt installed

        cost = min(self.highest_cost, _MAX_LAUNCHER_COST) if self.users else _DEFAULT_COST
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost))
        return replace(self, users={**self.users, name: hashed})

    def document(self) -> dict[str, Any]:
        """Every key this config holds, in the format's order, with paths made absolute."""
        document: dict[str, Any] = {}
        tls: dict[str, Any] = {
            "cert": self.cert,
            "key": self.key,
            "client_ca": self.client_ca,
            "cert_file": str(self.cert_file) if self.cert_file else None,
            "key_file": str(self.key_file) if self.key_file else None,
            "client_auth_type": self.client_auth_type if self.tls else None,
            "client_ca_file": str(self.client_ca_file) if self.client_ca_file else None,
            "client_allowed_sans": list(self.client_allowed_sans) if self.client_allowed_sans is not None else None,
            "min_version": self.min_version,
            "max_version": self.max_version,
            "cipher_suites": list(self.cipher_suites) if self.cipher_suites is not None else None,
            "prefer_server_cipher_suites": self.prefer_server_cipher_suites,
            "curve_preferences": list(self.curve_preferences) if self.curve_preferences is not None else None,
        }
        tls = {key: value for key, value in tls.items() if value is not None}
        if tls:
            document["tls_server_config"] = tls
        http = {key: value for key, value in (("http2", self.http2), ("headers", self.headers)) if value is not None}
        if http:
            document["http_server_config"] = http
        if self.users:
            document["basic_auth_users"] = {name: hashed.decode() for name, hashed in self.users.items()}
        if self.rate_limit is not None:
            document["rate_limit"] = {"interval": self.rate_limit.interval, "burst": self.rate_limit.burst}
        return document


class WebConfigError(ValueError):
    """A web config that cannot be used; the message is one line that names the file and the key."""


def fail(path: Path, key: str, problem: str) -> WebConfigError:
    return WebConfigError(f"web config {path}: {key}: {problem}")


def bcrypt_cost(hashed: bytes) -> int:
    return int(hashed[4:6])


def _mapping(path: Path, key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(path, key, "expected a mapping")
    unknown = sorted(set(map(str, value)) - set(known))
    if unknown:
        raise fail(path, f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(known)})")
    return value


def _readable_file(path: Path, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise fail(path, key, "expected a file name")
    resolved = (path.parent / value).resolve() if not Path(value).is_absolute() else Path(value)
    if not resolved.exists():
        raise fail(path, key, f"{resolved} does not exist")
    if not resolved.is_file():
        raise fail(path, key, f"cannot read {resolved}: not a file")
    try:
        resolved.read_bytes()
    except OSError as error:
        raise fail(path, key, f"cannot read {resolved}: {error.strerror or error}") from None
    return resolved


def _pem(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or "-----BEGIN " not in value:
        raise fail(path, key, "expected PEM text (-----BEGIN ...)")
    return value


def _names(path: Path, key: str, value: Any, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise fail(path, key, "expected a list of names")
    for item in value:
        if allowed is not None and item not in allowed:
            raise fail(path, key, f"{item!r} is not one of Go's names ({', '.join(allowed)})")
    return tuple(value)


def _boolean(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(path, key, "expected true or false")
    return value


def _version(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or value not in TLS_VERSIONS:
        raise fail(path, key, f"expected one of {', '.join(TLS_VERSIONS)}")
    return str(value)


def _one_of(path: Path, tls: dict[str, Any], inline: str, file: str) -> tuple[str | None, Path | None]:
    if inline in tls and file in tls:
        raise fail(path, f"tls_server_config.{inline}", f"give {inline} or {file}, not both")
    text = _pem(path, f"tls_server_config.{inline}", tls[inline]) if inline in tls else None
    location = _readable_file(path, f"tls_server_config.{file}", tls[file]) if file in tls else None
    return text, location


def _read_tls(path: Path, config: WebConfig, tls: dict[str, Any]) -> WebConfig:
    cert, cert_file = _one_of(path, tls, "cert", "cert_file")
    key, key_file = _one_of(path, tls, "key", "key_file")
    if cert is None and cert_file is None:
        raise fail(path, "tls_server_config.cert_file", "missing")
    if key is None and key_file is None:
        raise fail(path, "tls_server_config.key_file", "missing")
    if cert_file is not None and key_file is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
        except ssl.SSLError as error:
            raise fail(
                path, "tls_server_config", f"cert_file and key_file are not a matching pair ({error.reason})"
            ) from None
    client_ca, client_ca_file = _one_of(path, tls, "client_ca", "client_ca_file")
    has_ca = client_ca is not None or client_ca_file is not None
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in (*CLIENT_AUTH_TYPES, *_OLD_CLIENT_AUTH_TYPES):
        raise fail(path, "tls_server_config.client_auth_type", f"expected one of {', '.join(CLIENT_AUTH_TYPES)}")
    if auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and not has_ca:
        raise fail(path, "tls_server_config.client_ca_file", f"needed for client_auth_type {auth_type}")
    if auth_type == "NoClientCert" and has_ca:  # Go refuses it too: a CA that verifies nothing is a mistake
        raise fail(
            path,
            "tls_server_config.client_auth_type",
            "a client CA is given but no client is asked for a certificate (NoClientCert, the default); "
            "set VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        )
    sans = None
    if "client_allowed_sans" in tls:
        sans = _names(path, "tls_server_config.client_allowed_sans", tls["client_allowed_sans"], None)
        if auth_type not in CLIENT_CERT_REQUIRED:
            raise fail(
                path,
                "tls_server_config.client_allowed_sans",
                f"needs client_auth_type RequireAndVerifyClientCert: with {auth_type} a client that sends no "
                "certificate is let in without its name being checked",
            )
    versions = {
        name: _version(path, f"tls_server_config.{name}", tls[name])
        for name in ("min_version", "max_version")
        if name in tls
    }
    low, high = versions.get("min_version", "TLS12"), versions.get("max_version", "TLS13")
    if TLS_VERSIONS[low] > TLS_VERSIONS[high]:
        raise fail(path, "tls_server_config.min_version", f"{low} is above max_version {high}")
    suites = curves = prefer = None
    if "cipher_suites" in tls:
        suites = _names(path, "tls_server_config.cipher_suites", tls["cipher_suites"], CIPHER_SUITES)
    if "curve_preferences" in tls:
        curves = _names(path, "tls_server_config.curve_preferences", tls["curve_preferences"], CURVES)
    if "prefer_server_cipher_suites" in tls:
        prefer = _boolean(path, "tls_server_config.prefer_server_cipher_suites", tls["prefer_server_cipher_suites"])
    return replace(
        config,
        cert=cert,
        cert_file=cert_file,
        key=key,
        key_file=key_file,
        client_ca=client_ca,
        client_ca_file=client_ca_file,
        client_auth_type=str(auth_type),
        client_allowed_sans=sans,
        min_version=versions.get("min_version"),
        max_version=versions.get("max_version"),
        cipher_suites=suites,
        prefer_server_cipher_suites=prefer,
        curve_preferences=curves,
    )


def _read_http(path: Path, config: WebConfig, http: dict[str, Any]) -> WebConfig:
    http2 = _boolean(path, "http_server_config.http2", http["http2"]) if "http2" in http else None
    headers = None
    if "headers" in http:
        given = _mapping(path, "http_server_config.headers", http["headers"], tuple(SECURITY_HEADERS))
        headers = {}
        for name, value in given.items():
            key = f"http_server_config.headers.{name}"
            if not isinstance(value, str) or not value.isprintable() or not value.isascii():
                raise fail(path, key, "expected one line of printable ASCII")
            accepted = SECURITY_HEADERS[name]
            if accepted is not None and value not in accepted:
                raise fail(path, key, f"expected one of {', '.join(accepted)}")
            headers[str(name)] = value
    return replace(config, http2=http2, headers=headers)


def go_duration_seconds(value: Any) -> float | None:
    """Seconds in a Go duration ("1m30s", "250ms", or 0); None for anything else."""
    if value == 0 and not isinstance(value, bool):
        return 0.0
    if not isinstance(value, str) or not _GO_DURATION.fullmatch(value):
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(value))


def _read_rate_limit(path: Path, config: WebConfig, limit: dict[str, Any]) -> WebConfig:
    interval = limit.get("interval", 0)
    seconds = go_duration_seconds(interval)
    if seconds is None:
        raise fail(path, "rate_limit.interval", "expected a duration such as 100ms or 1s (0 turns the limit off)")
    burst = limit.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise fail(path, "rate_limit.burst", "expected a whole number, 0 or more")
    if seconds > 0 and burst < 1:
        raise fail(path, "rate_limit.burst", "must be 1 or more when interval is set, or no request would pass")
    return replace(config, rate_limit=RateLimit(interval, seconds, burst))


def check_bcrypt_hash(hashed: str) -> str | None:
    """What is wrong with a bcrypt hash, or None. bcrypt itself judges the salt and digest, at the lowest cost,
    so that a hash it would refuse at login is refused now and a high cost is not paid for it."""
    if len(hashed) != 60 or hashed[:4] not in ("$2a$", "$2b$", "$2y$") or hashed[6] != "$":
        return "not a bcrypt hash (make one with `htpasswd -nBC 12 ''`)"
    if not hashed[4:6].isdigit() or not _MIN_COST <= int(hashed[4:6]) <= _MAX_COST:
        return f"bcrypt cost {hashed[4:6]!r} is outside {_MIN_COST}-{_MAX_COST}"
    if not set(hashed[7:]) <= _BCRYPT_ALPHABET:
        return "not a bcrypt hash: its salt and digest hold characters bcrypt does not use"
    import bcrypt  # here: an exporter without basic auth needs no bcrypt installed

    try:
        bcrypt.checkpw(b"", f"{hashed[:4]}{_MIN_COST:02d}{hashed[6:]}".encode())
    except ValueError as error:
        return f"bcrypt refuses it ({error})"
    return None


def _read_users(path: Path, config: WebConfig, users: Any) -> WebConfig:
    if not isinstance(users, dict) or not users:
        raise fail(path, "basic_auth_users", "expected a mapping of user names to bcrypt hashes")
    checked: dict[str, bytes] = {}
    for name, hashed in users.items():
        name = str(name)
        if not name or ":" in name or not name.isprintable():
            raise fail(path, "basic_auth_users", f"{name!r} cannot be a user name (printable, without a colon)")
        problem = check_bcrypt_hash(hashed) if isinstance(hashed, str) else "not a bcrypt hash"
        if problem:
            raise fail(path, f"basic_auth_users.{name}", problem)
        checked[name] = hashed.encode()
    return replace(config, users=checked)


_MOST_BYTES = 1024 * 1024


def load_web_config(path: Path) -> WebConfig:
    """Reads and checks the whole file; every problem is one line that names its key. Nothing starts."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MOST_BYTES + 1)  # never more: /dev/zero or a huge file is refused at once
        text = data.decode("utf-8")
    except OSError as error:
        raise WebConfigError(f"cannot read web config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise WebConfigError(f"web config {path} is not UTF-8 text") from None
    if len(data) > _MOST_BYTES:
        raise WebConfigError(f"web config {path} is larger than {_MOST_BYTES // 1024} KiB; a web config is far smaller")
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise WebConfigError(f"web config {path} is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise WebConfigError(f"web config {path} must hold a mapping")
    unknown = sorted(set(map(str, document)) - set(_KEYS))
    if unknown:
        raise fail(path, unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
    config = WebConfig(source=path)
    if document.get("tls_server_config") is not None:  # present but empty: a TLS config without its certificate
        tls = _mapping(path, "tls_server_config", document["tls_server_config"], _TLS_KEYS)
        config = _read_tls(path, config, tls)
    http = _mapping(path, "http_server_config", document.get("http_server_config"), _HTTP_KEYS)
    if http:
        config = _read_http(path, config, http)
    if document.get("basic_auth_users") is not None:
        config = _read_users(path, config, document["basic_auth_users"])
    limit = _mapping(path, "rate_limit", document.get("rate_limit"), _RATE_LIMIT_KEYS)
    if limit:
        config = _read_rate_limit(path, config, limit)
    return config

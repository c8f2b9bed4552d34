"""The exporter-toolkit web configuration (node_exporter's and Prometheus' --web.config.file): TLS and
bcrypt basic-auth users, read, checked and written here for the exporter and Prometheus alike.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt            # optional: verify client certificates
      client_auth_type: RequireAndVerifyClientCert
    basic_auth_users:
      alice: $2b$12$...                 # bcrypt hashes only

Relative paths are relative to the file, as exporter-toolkit reads them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_KNOWN_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}


@dataclass(frozen=True)
class WebConfig:
    source: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    @property
    def auth(self) -> bool:
        return bool(self.users)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def with_user(self, name: str, password: str) -> WebConfig:
        import bcrypt  # here: an exporter without basic auth needs no bcrypt installed

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10))
        return replace(self, users={**self.users, name: hashed})

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.tls:
            tls: dict[str, str] = {"cert_file": str(self.cert_file), "key_file": str(self.key_file)}
            if self.client_ca_file is not None:
                tls["client_ca_file"] = str(self.client_ca_file)
            tls["client_auth_type"] = self.client_auth_type
            document["tls_server_config"] = tls
        if self.users:
            document["basic_auth_users"] = {name: hashed.decode() for name, hashed in self.users.items()}
        return document


class WebConfigError(ValueError):
    """A web config that cannot be used; the message is one line that names the file and the key."""


def _fail(path: Path, key: str, problem: str) -> WebConfigError:
    return WebConfigError(f"web config {path}: {key}: {problem}")


def _readable_file(path: Path, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, "expected a file name")
    resolved = (path.parent / value).resolve() if not Path(value).is_absolute() else Path(value)
    if not resolved.exists():
        raise _fail(path, key, f"{resolved} does not exist")
    if not resolved.is_file():
        raise _fail(path, key, f"cannot read {resolved}: not a file")
    try:
        resolved.read_bytes()
    except OSError as error:
        raise _fail(path, key, f"cannot read {resolved}: {error.strerror or error}") from None
    return resolved


def _is_bcrypt(hashed: str) -> bool:
    # $2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of salt and hash.
    return len(hashed) == 60 and hashed[:4] in ("$2a$", "$2b$", "$2y$") and hashed[4:6].isdigit()


def load_web_config(path: Path) -> WebConfig:
    """Reads and checks the whole file; every problem is one line that names its key. Nothing starts."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise WebConfigError(f"cannot read web config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise WebConfigError(f"web config {path} is not UTF-8 text") from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise WebConfigError(f"web config {path} is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise WebConfigError(f"web config {path} must hold a mapping")
    unknown = sorted(set(map(str, document)) - _KNOWN_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})")
    config = WebConfig(source=path)

    tls = document.get("tls_server_config")
    if tls is not None:
        if not isinstance(tls, dict):
            raise _fail(path, "tls_server_config", "expected a mapping")
        unknown = sorted(set(map(str, tls)) - _TLS_KEYS)
        if unknown:
            raise _fail(path, f"tls_server_config.{unknown[0]}", "unknown key")
        for required in ("cert_file", "key_file"):
            if required not in tls:
                raise _fail(path, f"tls_server_config.{required}", "missing")
        cert = _readable_file(path, "tls_server_config.cert_file", tls["cert_file"])
        key = _readable_file(path, "tls_server_config.key_file", tls["key_file"])
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except ssl.SSLError as error:
            raise _fail(
                path, "tls_server_config", f"cert_file and key_file are not a matching pair ({error.reason})"
            ) from None
        client_ca = None
        if "client_ca_file" in tls:
            client_ca = _readable_file(path, "tls_server_config.client_ca_file", tls["client_ca_file"])
        auth_type = str(tls.get("client_auth_type", "RequireAndVerifyClientCert" if client_ca else "NoClientCert"))
        if auth_type not in CLIENT_AUTH_TYPES:
            raise _fail(path, "tls_server_config.client_auth_type", f"expected one of {', '.join(CLIENT_AUTH_TYPES)}")
        if auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and client_ca is None:
            raise _fail(path, "tls_server_config.client_ca_file", f"needed for client_auth_type {auth_type}")
        config = replace(config, cert_file=cert, key_file=key, client_ca_file=client_ca, client_auth_type=auth_type)

    users = document.get("basic_auth_users")
    if users is not None:
        if not isinstance(users, dict) or not users:
            raise _fail(path, "basic_auth_users", "expected a mapping of user names to bcrypt hashes")
        checked: dict[str, bytes] = {}
        for name, hashed in users.items():
            if not isinstance(hashed, str) or not _is_bcrypt(hashed):
                raise _fail(path, f"basic_auth_users.{name}", "not a bcrypt hash (make one with `htpasswd -nBC 12 ''`)")
            checked[str(name)] = hashed.encode()
        config = replace(config, users=checked)
    return config

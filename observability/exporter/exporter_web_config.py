"""What the exporter does with each key of a web config: it applies it, or refuses the file in one line that
names the key. Nothing is accepted and then ignored.

Applied: cert_file, key_file, client_ca_file and client_ca, client_auth_type, client_allowed_sans, min_version,
max_version, cipher_suites (mapped to OpenSSL's names; TLS 1.3 suites cannot be chosen, in Go or here),
prefer_server_cipher_suites, http2: false, headers, basic_auth_users, rate_limit.
Refused: inline cert and key (Python's ssl loads them from files only), curve_preferences (Python 3.11's ssl
sets a single curve, not a preference list), http2: true (the exporter speaks HTTP/1.1), and
RequireAnyClientCert without a CA: Python verifies every certificate it asks for, so with nothing to verify
against it would turn every client away. Where Python cannot ask for a certificate without verifying it,
it verifies: RequireAnyClientCert with a CA acts as RequireAndVerifyClientCert, RequestClientCert with a CA
as VerifyClientCertIfGiven, and RequestClientCert without one asks for nothing (the exporter never reads an
unverified certificate).
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any

from observability.exporter.tls_names import DEFAULT_TLS12_CIPHERS, TLS12_CIPHER_SUITES, TLS_VERSIONS
from observability.exporter.web_config import CLIENT_CERT_REQUIRED, WebConfig, fail, load_web_config


def refuse_what_the_exporter_cannot_apply(config: WebConfig) -> None:
    path = config.source
    if config.cert is not None:
        raise fail(path, "tls_server_config.cert", "not supported by this exporter: put it in a file for cert_file")
    if config.key is not None:
        raise fail(path, "tls_server_config.key", "not supported by this exporter: put it in a file for key_file")
    if config.curve_preferences is not None:
        raise fail(
            path,
            "tls_server_config.curve_preferences",
            "not supported by this exporter (Python's ssl cannot set a list of curves); remove it to get OpenSSL's "
            "defaults (X25519, P-256, P-384 ...)",
        )
    if config.client_auth_type in ("RequireAnyClientCert", "RequireClientCert") and not config.verifies_clients:
        raise fail(
            path,
            "tls_server_config.client_auth_type",
            "RequireAnyClientCert without client_ca_file would turn every client away here (Python verifies every "
            "certificate it asks for); give client_ca_file, and certificates are verified against it",
        )
    if config.http2:
        raise fail(path, "http_server_config.http2", "the exporter speaks HTTP/1.1 only; set it to false or remove it")


def _verify_mode(config: WebConfig) -> ssl.VerifyMode:
    if not config.verifies_clients or config.client_auth_type == "NoClientCert":
        return ssl.CERT_NONE
    if config.client_auth_type in CLIENT_CERT_REQUIRED:
        return ssl.CERT_REQUIRED
    return ssl.CERT_OPTIONAL


def server_context(config: WebConfig) -> ssl.SSLContext:
    """The exporter's TLS, built from every TLS key of `config` (refuse_what_the_exporter_cannot_apply first)."""
    assert config.cert_file is not None and config.key_file is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[config.min_version or "TLS12"]
    context.maximum_version = TLS_VERSIONS[config.max_version or "TLS13"]
    if config.cipher_suites is None:
        context.set_ciphers(DEFAULT_TLS12_CIPHERS)
    else:
        chosen = [TLS12_CIPHER_SUITES[name] for name in config.cipher_suites if name in TLS12_CIPHER_SUITES]
        if chosen:
            context.set_ciphers(":".join(chosen))
        elif context.minimum_version < ssl.TLSVersion.TLSv1_3:
            # Only TLS 1.3 suites named: Go then has none for TLS 1.2, and no TLS 1.2 client gets in. Nor here.
            context.minimum_version = ssl.TLSVersion.TLSv1_3
    if config.prefer_server_cipher_suites is not False:  # the format's default is true
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(config.cert_file, config.key_file)
    context.verify_mode = _verify_mode(config)
    if context.verify_mode != ssl.CERT_NONE:
        context.load_verify_locations(
            cafile=str(config.client_ca_file) if config.client_ca_file else None, cadata=config.client_ca
        )
    return context


def _check_context(config: WebConfig) -> None:
    """OpenSSL's verdict on the TLS keys now, in one line, rather than at the first connection."""
    path = config.source
    try:
        server_context(config)
    except ssl.SSLError as error:
        raise fail(path, "tls_server_config", f"OpenSSL refuses it ({error.reason or error})") from None
    except ValueError as error:  # a TLS version this OpenSSL build does not offer
        raise fail(path, "tls_server_config", f"OpenSSL refuses it ({error})") from None


def load_exporter_web_config(path: Path) -> WebConfig:
    """A web config the exporter applies in full; WebConfigError (one line) for anything it cannot apply."""
    config = load_web_config(path)
    refuse_what_the_exporter_cannot_apply(config)
    if config.tls:
        _check_context(config)
    return config


def _subject_alt_names(peercert: dict[str, Any]) -> set[str]:
    """DNS names, e-mail addresses, IP addresses and URIs, as Go spells them (IPv6 compressed)."""
    names = set()
    for kind, value in peercert.get("subjectAltName", ()):
        value = str(value).strip()
        if kind == "IP Address":
            try:
                value = str(ipaddress.ip_address(value))
            except ValueError:
                continue
        if kind in ("DNS", "email", "IP Address", "URI"):
            names.add(value)
    return names


def _normalised(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def client_name_allowed(peercert: dict[str, Any] | None, allowed: tuple[str, ...]) -> bool:
    """exporter-toolkit's client_allowed_sans: the client's certificate names one of `allowed` exactly."""
    if not peercert:
        return False
    return bool(_subject_alt_names(peercert) & {_normalised(name) for name in allowed})

"""A test CA and client certificates signed by it, made with openssl at test time (no key is committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


def certificate_authority(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def client_certificate(directory: Path, authority: tuple[Path, Path], name: str, san: str) -> tuple[Path, Path]:
    """A client certificate for `san` (openssl's syntax: "DNS:scraper.example"), signed by `authority`."""
    cert, key, request = directory / f"{name}.crt", directory / f"{name}.key", directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\nextendedKeyUsage=clientAuth\n")
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(request),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(authority[0]), "-CAkey", str(authority[1]),
        "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return cert, key

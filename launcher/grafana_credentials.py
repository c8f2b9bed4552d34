"""Grafana's admin password: generated once, kept with mode 0600 in the state dir, shown once."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ADMIN_USER = "admin"


@dataclass(frozen=True)
class GrafanaCredentials:
    path: Path
    password: str
    new: bool


def ensure_admin_password(state_dir: Path) -> GrafanaCredentials:
    path = state_dir / "grafana-admin-password"
    if path.exists() and path.read_text().strip():
        path.chmod(0o600)
        return GrafanaCredentials(path, path.read_text().strip(), new=False)
    password = secrets.token_urlsafe(18)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return GrafanaCredentials(path, password, new=True)


def describe(credentials: GrafanaCredentials) -> str:
    if credentials.new:
        return (
            f"user {ADMIN_USER}, password {credentials.password} "
            f"(generated now and shown this once; kept in {credentials.path})"
        )
    return f"user {ADMIN_USER}, password in {credentials.path}"

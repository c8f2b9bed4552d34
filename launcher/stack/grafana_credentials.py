"""Grafana's admin password: generated once, kept with mode 0600 in the state dir, shown once."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.file_writes import read_private, write_private

ADMIN_USER = "admin"


@dataclass(frozen=True)
class GrafanaCredentials:
    path: Path
    password: str
    new: bool


def ensure_admin_password(state_dir: Path) -> GrafanaCredentials:
    path = state_dir / "grafana-admin-password"
    existing = (read_private(path) or "").strip()
    if existing:
        return GrafanaCredentials(path, existing, new=False)
    password = secrets.token_urlsafe(18)
    write_private(path, password + "\n")
    return GrafanaCredentials(path, password, new=True)


def describe(credentials: GrafanaCredentials, on_terminal: bool | None = None) -> str:
    """Shown once, and only to a person at a terminal: under systemd, stderr is the journal, which others
    may read, so the log names the file instead."""
    on_terminal = sys.stderr.isatty() if on_terminal is None else on_terminal
    if credentials.new and not on_terminal:
        return f"user {ADMIN_USER}, password generated now into {credentials.path} (mode 0600; not logged)"
    if credentials.new:
        return (
            f"user {ADMIN_USER}, password {credentials.password} "
            f"(generated now and shown this once; kept in {credentials.path})"
        )
    return f"user {ADMIN_USER}, password in {credentials.path}"

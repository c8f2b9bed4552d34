"""The launcher's own basic-auth user on the endpoints it secures (the exporter, Prometheus), and how its
tools (top, incidents) read that user's password back from the state dir to reach them."""

from __future__ import annotations

import base64
from pathlib import Path

from launcher.state_layout import StateLayout

LAUNCHER_USER = "serve-with-monitoring"


def password_file(layout: StateLayout, endpoint: str) -> Path:
    """Kept 0600 in the state dir, made once by the launcher (stack/secured_endpoint.py)."""
    return layout.generated / endpoint / "launcher-password"


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def launcher_authorization(layout: StateLayout, endpoint: str) -> str | None:
    """The Authorization header for `endpoint`, when the launcher secured it; None when it did not."""
    try:
        password = password_file(layout, endpoint).read_text().strip()
    except OSError:
        return None
    return basic_authorization(LAUNCHER_USER, password) if password else None

"""What the stack reads beside observability/: the compose file, and Grafana's settings as a mapping."""

from __future__ import annotations

import os
from pathlib import Path

from observability.files import GRAFANA_ENV, OBSERVABILITY


def compose_file() -> Path | None:
    """deploy/docker-compose.yaml of a source checkout or image, or where SWM_COMPOSE_FILE points."""
    configured = os.environ.get("SWM_COMPOSE_FILE")
    if configured:
        return Path(configured)
    beside = OBSERVABILITY.parent / "deploy" / "docker-compose.yaml"
    return beside if beside.exists() else None


def grafana_env_defaults() -> dict[str, str]:
    values = {}
    for line in GRAFANA_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values

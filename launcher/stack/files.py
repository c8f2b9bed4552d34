"""What the stack reads beside observability/: the compose file, and Grafana's settings as a mapping."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path, PurePosixPath

from observability.files import GRAFANA_ENV, OBSERVABILITY

DISTRIBUTION = "serve-with-monitoring"
# Where pyproject.toml's data-files put deploy/docker-compose.yaml, under the installation's prefix.
INSTALLED_COMPOSE = PurePosixPath("share/serve-with-monitoring/docker-compose.yaml")


def compose_file() -> Path | None:
    """Where SWM_COMPOSE_FILE points, else deploy/docker-compose.yaml of a source checkout, else the copy
    an installed wheel carries."""
    configured = os.environ.get("SWM_COMPOSE_FILE")
    if configured:
        return Path(configured)
    beside = OBSERVABILITY.parent / "deploy" / "docker-compose.yaml"
    if beside.exists():
        return beside
    return installed_compose_file()


def installed_compose_file() -> Path | None:
    # The installer's RECORD names the file relative to site-packages, so this finds it whatever the prefix
    # was (a venv, /usr/local, ~/.local with --user), where sys.prefix alone would miss the last two.
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.as_posix().endswith(str(INSTALLED_COMPOSE)):
            path = Path(file.locate()).resolve()
            return path if path.exists() else None
    return None


def grafana_env_defaults() -> dict[str, str]:
    values = {}
    for line in GRAFANA_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values

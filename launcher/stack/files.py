"""Where the shipped Prometheus and Grafana files are: observability/ is their one home."""

from __future__ import annotations

import os
from pathlib import Path

import observability

OBSERVABILITY = Path(observability.__file__).resolve().parent
PROMETHEUS_DIR = OBSERVABILITY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_RULES = PROMETHEUS_DIR / "rules"
GRAFANA_DIR = OBSERVABILITY / "grafana"
GRAFANA_PROVISIONING = GRAFANA_DIR / "provisioning"
GRAFANA_DASHBOARDS = GRAFANA_DIR / "dashboards"
GRAFANA_ENV = GRAFANA_DIR / "grafana.env"
HOME_DASHBOARD = GRAFANA_DASHBOARDS / "swm-vllm-serving.json"


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

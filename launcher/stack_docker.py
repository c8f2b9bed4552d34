"""The stack as docker compose runs it: `up -d`, then follow the logs as a supervised child; `down` at the end."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from launcher.alertmanager_config import config_path
from launcher.alertmanager_native import alertmanager_url
from launcher.child_spec import Timing
from launcher.grafana_native import grafana_url
from launcher.http_child import HttpChild
from launcher.prometheus_native import prometheus_url
from launcher.prometheus_rules import rules_dir
from launcher.settings import Settings
from launcher.stack_files import OBSERVABILITY
from launcher.state_layout import StateLayout

log = logging.getLogger(__name__)

_UP_AND_FOLLOW = 'set -e; docker compose "$@" up -d --remove-orphans; exec docker compose "$@" logs --follow --tail 0'
# `down` gives each container this long after SIGTERM; the whole call gets DOWN_TIMEOUT_S. The systemd
# unit's TimeoutStopSec leaves room for it.
CONTAINER_STOP_TIMEOUT_S = 5
DOWN_TIMEOUT_S = 10.0


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def project_name(layout: StateLayout) -> str:
    # One compose project per state dir: two launchers on one host do not share a stack.
    return "swm-" + hashlib.sha256(str(layout.root).encode()).hexdigest()[:8]


def compose_environment(settings: Settings, layout: StateLayout, grafana_password: str) -> dict[str, str]:
    # Passed in the environment, not a file: a file the launcher owns with mode 0600 is unreadable to
    # Grafana's container user.
    return {
        **os.environ,
        "SWM_GRAFANA_ADMIN_PASSWORD": grafana_password,
        "SWM_STATE_DIR": str(layout.root),
        "SWM_OBSERVABILITY_DIR": str(OBSERVABILITY),
        "SWM_PROMETHEUS_PORT": str(settings.prometheus_port),
        "SWM_GRAFANA_PORT": str(settings.grafana_port),
        "SWM_ALERTMANAGER_PORT": str(settings.alertmanager_port),
        "SWM_RULES_DIR": str(rules_dir(layout)),
        "SWM_ALERTMANAGER_CONFIG": str(config_path(layout)),
    }


def docker_stack_child(settings: Settings, layout: StateLayout, compose_file: Path, grafana_password: str) -> HttpChild:
    project_args = ("-p", project_name(layout), "-f", str(compose_file))
    return HttpChild(
        name="stack",
        display_name="docker stack",
        command=("sh", "-c", _UP_AND_FOLLOW, "sh", *project_args),
        health_urls=(
            prometheus_url(settings) + "/-/ready",
            alertmanager_url(settings) + "/-/ready",
            grafana_url(settings) + "/api/health",
        ),
        log_path=layout.log_file("stack"),
        environment=compose_environment(settings, layout, grafana_password),
        # Pulling the images on a first run can take minutes.
        timing=Timing(startup_timeout_s=900.0, health_interval_s=10.0, health_failures=3),
    )


def compose_down(settings: Settings, layout: StateLayout, compose_file: Path, grafana_password: str) -> None:
    command = [
        "docker",
        "compose",
        "-p",
        project_name(layout),
        "-f",
        str(compose_file),
        "down",
        "--timeout",
        str(CONTAINER_STOP_TIMEOUT_S),
    ]
    log.info("stopping the docker stack (volumes are kept): %s", " ".join(command))
    try:
        subprocess.run(
            command,
            env=compose_environment(settings, layout, grafana_password),
            timeout=DOWN_TIMEOUT_S,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("docker compose down did not finish: %s", error)

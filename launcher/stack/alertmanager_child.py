"""Alertmanager as a supervised child, beside native Prometheus: loopback only, gossip clustering off."""

from __future__ import annotations

import subprocess
from pathlib import Path

from launcher import defaults
from launcher.addresses import host_port
from launcher.errors import PreflightError
from launcher.helper_environment import helper_environment
from launcher.installed_tools import find_tool
from launcher.settings.settings import Settings
from launcher.stack.alertmanager_config import config_path, write_config
from launcher.stack.http_child import HttpChild
from launcher.state_layout import StateLayout


def find_alertmanager() -> Path | None:
    return find_tool("alertmanager", "prometheus-alertmanager")  # Debian names its binary the latter


def find_amtool() -> Path | None:
    return find_tool("amtool")


# Debian's build reads its notification templates from here instead of embedding them.
DEBIAN_TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")


def check_alertmanager(binary: Path) -> None:
    """Debian's Alertmanager without its templates loads no configuration and delivers nothing: say so now."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            env=helper_environment(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # no verdict: it will say so in its own log
    if "debian" in (result.stdout + result.stderr) and not DEBIAN_TEMPLATES.exists():
        raise PreflightError(
            f"{binary} is Debian's Alertmanager, which needs {DEBIAN_TEMPLATES} (part of the "
            "prometheus-alertmanager package): install the package, or run scripts/setup.sh as root"
        )


def alertmanager_address(settings: Settings) -> str:
    return host_port(defaults.LOOPBACK, settings.alertmanager_port)


def alertmanager_url(settings: Settings) -> str:
    return f"http://{alertmanager_address(settings)}"


def alertmanager_child(settings: Settings, layout: StateLayout, binary: Path) -> HttpChild:
    command = (
        str(binary),
        f"--config.file={config_path(layout)}",
        f"--storage.path={layout.root / 'alertmanager-data'}",
        f"--web.listen-address={alertmanager_address(settings)}",
        f"--web.external-url={alertmanager_url(settings)}",
        # Gossip clustering listens on 0.0.0.0:9094 by default; one Alertmanager per host needs none.
        "--cluster.listen-address=",
    )
    return HttpChild(
        name="alertmanager",
        display_name="Alertmanager",
        command=command,
        health_urls=(alertmanager_url(settings) + "/-/ready",),
        log_path=layout.log_file("alertmanager"),
        environment=helper_environment(),
        before_start=lambda: write_config(settings, layout),
    )

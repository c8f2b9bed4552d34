"""Grafana as a supervised child, when a `grafana` binary is installed: provisioned from observability/."""

from __future__ import annotations

import shutil
from pathlib import Path

from launcher import defaults
from launcher.addresses import host_port
from launcher.helper_environment import helper_environment
from launcher.settings.settings import Settings
from launcher.stack.alertmanager_child import alertmanager_url
from launcher.stack.files import grafana_env_defaults
from launcher.stack.grafana_dashboards import dashboards_dir, home_dashboard
from launcher.stack.http_child import HttpChild
from launcher.stack.prometheus_child import prometheus_duration, prometheus_url
from launcher.stack.secured_endpoint import OPEN, StackAccess
from launcher.state_layout import StateLayout
from launcher.supervision.child_spec import Timing
from observability.files import GRAFANA_PROVISIONING


def find_grafana() -> Path | None:
    found = shutil.which("grafana")
    return Path(found) if found else None


def _homepath(binary: Path) -> Path:
    """Grafana needs its static files: they sit in share/grafana beside the binary's prefix."""
    for candidate in (binary.resolve().parent.parent / "share" / "grafana", Path("/usr/share/grafana")):
        if (candidate / "public").exists() or (candidate / "conf").exists():
            return candidate
    return binary.resolve().parent.parent


def grafana_url(settings: Settings) -> str:
    return f"http://{host_port(defaults.LOOPBACK, settings.grafana_port)}"


def grafana_environment(
    settings: Settings, layout: StateLayout, password_file: Path, access: StackAccess = OPEN
) -> dict[str, str]:
    data = layout.root / "grafana"
    prometheus = access.prometheus
    return helper_environment(
        {
            **grafana_env_defaults(),
            "GF_SERVER_HTTP_ADDR": defaults.LOOPBACK,
            "GF_SERVER_HTTP_PORT": str(settings.grafana_port),
            "GF_PATHS_DATA": str(data / "data"),
            "GF_PATHS_LOGS": str(data / "logs"),
            "GF_PATHS_PLUGINS": str(data / "plugins"),
            "GF_PATHS_PROVISIONING": str(GRAFANA_PROVISIONING),
            "GF_SECURITY_ADMIN_PASSWORD__FILE": str(password_file),
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": str(home_dashboard(layout)),
            "SWM_PROMETHEUS_URL": prometheus_url(settings, access),
            # The datasource's basic auth and TLS, when Prometheus sits behind a web config (provisioning
            # reads them from here; the password is Grafana's to know, as a scraper's would be).
            "SWM_PROMETHEUS_BASIC_AUTH": "true" if prometheus.username else "false",
            "SWM_PROMETHEUS_USER": prometheus.username or "",
            "SWM_PROMETHEUS_PASSWORD": prometheus.password or "",
            "SWM_PROMETHEUS_TLS_SKIP_VERIFY": "true" if prometheus.scheme == "https" else "false",
            "SWM_ALERTMANAGER_URL": alertmanager_url(settings),
            "SWM_SCRAPE_INTERVAL": prometheus_duration(settings.scrape_interval),
            "SWM_DASHBOARDS_DIR": str(dashboards_dir(layout)),
        }
    )


def grafana_child(
    settings: Settings, layout: StateLayout, binary: Path, password_file: Path, access: StackAccess = OPEN
) -> HttpChild:
    return HttpChild(
        name="grafana",
        display_name="Grafana",
        command=(str(binary), "server", f"--homepath={_homepath(binary)}"),
        health_urls=(grafana_url(settings) + "/api/health",),
        log_path=layout.log_file("grafana"),
        environment=grafana_environment(settings, layout, password_file, access),
        timing=Timing(startup_timeout_s=180.0, health_interval_s=10.0, health_failures=3),
    )

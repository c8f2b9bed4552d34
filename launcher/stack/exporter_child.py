"""The one place that turns settings into the exporter's command line."""

from __future__ import annotations

import sys

from launcher.addresses import dial_host, host_port
from launcher.helper_environment import helper_environment
from launcher.settings.settings import Settings
from launcher.stack.http_child import HttpChild
from launcher.stack.secured_endpoint import SecuredEndpoint
from launcher.state_layout import StateLayout


def exporter_address(settings: Settings) -> str:
    return host_port(dial_host(settings.exporter_host), settings.exporter_port)


def exporter_url(settings: Settings, endpoint: SecuredEndpoint | None = None) -> str:
    return f"{endpoint.scheme if endpoint else 'http'}://{exporter_address(settings)}"


def exporter_child(settings: Settings, layout: StateLayout, endpoint: SecuredEndpoint | None = None) -> HttpChild:
    endpoint = endpoint or SecuredEndpoint()
    command = (
        sys.executable,
        "-m",
        "launcher",
        "exporter",
        "--host",
        settings.exporter_host,
        "--port",
        str(settings.exporter_port),
        "--state-dir",
        str(layout.root),
        "--collect-interval",
        f"{settings.collect_interval:g}",
    )
    if endpoint.web_config_file is not None:
        command = (*command, "--web-config-file", str(endpoint.web_config_file))
    # Only the collectors named: the rest keep the exporter's own defaults.
    command += tuple(f"--collector.{name}" for name in settings.exporter_collector)
    command += tuple(f"--no-collector.{name}" for name in settings.no_exporter_collector)
    return HttpChild(
        name="exporter",
        display_name="exporter",
        command=command,
        health_urls=(exporter_url(settings, endpoint) + "/healthz",),
        log_path=layout.log_file("exporter"),
        environment=helper_environment({"PYTHONUNBUFFERED": "1"}),
    )

"""The one place that turns settings into the exporter's command line."""

from __future__ import annotations

import os
import sys

from launcher.addresses import dial_host, host_port
from launcher.http_child import HttpChild
from launcher.settings import Settings
from launcher.state_layout import StateLayout


def exporter_address(settings: Settings) -> str:
    return host_port(dial_host(settings.exporter_host), settings.exporter_port)


def exporter_url(settings: Settings) -> str:
    return f"http://{exporter_address(settings)}"


def exporter_child(settings: Settings, layout: StateLayout) -> HttpChild:
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
    return HttpChild(
        name="exporter",
        display_name="exporter",
        command=command,
        health_urls=(exporter_url(settings) + "/healthz",),
        log_path=layout.log_file("exporter"),
        environment={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

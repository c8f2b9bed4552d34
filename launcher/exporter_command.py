"""The one place that turns settings into the exporter's command line."""

from __future__ import annotations

import os
import sys

from launcher.http_child import HttpChild
from launcher.settings import Settings
from launcher.state_layout import StateLayout


def exporter_address(settings: Settings) -> str:
    host = "127.0.0.1" if settings.exporter_host in ("0.0.0.0", "::", "") else settings.exporter_host
    return f"{host}:{settings.exporter_port}"


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

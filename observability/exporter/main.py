"""The exporter's main: build the collectors, start them, serve until stopped. The command line is read
by launcher/commands/exporter.py; nothing here imports the launcher beyond its state types."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from observability.exporter.build import build_registry
from observability.exporter.collector_catalog import NAMES, enabled_collectors
from observability.exporter.labels import default_hostname
from observability.exporter.server import serve
from observability.exporter.web_config import WebConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExporterOptions:
    host: str
    port: int
    collect_interval_s: float
    hostname: str | None = None
    state_file: Path | None = None  # a launcher's supervisor.json, for supervisor metrics and vLLM's tree
    disk_path: Path | None = None  # whose filesystem to report (the state dir)
    fleet_targets: Path | None = None  # served at /sd
    web: WebConfig | None = None
    collectors: tuple[str, ...] = enabled_collectors()  # the names to build; see collector_catalog.py


def run(options: ExporterOptions) -> int:
    registry = build_registry(
        options.hostname or default_hostname(),
        options.collect_interval_s,
        options.state_file,
        options.disk_path,
        collectors=options.collectors,
    )
    disabled = [name for name in NAMES if name not in options.collectors]
    if disabled:
        log.info("collectors turned off: %s", ", ".join(disabled))
    registry.start()
    web = options.web
    log.info(
        "exporter on %s://%s:%d/metrics (collecting every %.1f s%s)",
        web.scheme if web else "http",
        options.host,
        options.port,
        options.collect_interval_s,
        "; basic auth on /metrics and /sd" if web is not None and web.auth else "",
    )
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        serve(registry, options.host, options.port, options.fleet_targets, web)
    finally:
        registry.stop()
    return 0

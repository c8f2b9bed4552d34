"""`serve-with-monitoring exporter`: the exporter alone, for a node without the launcher
(a Kubernetes DaemonSet or sidecar), or as the launcher's child."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from launcher import defaults
from launcher import value_parsers as parse
from launcher.addresses import is_exposed
from launcher.argument_parsing import OneLineErrorParser, typed
from launcher.preflight import check_port_free
from launcher.secured_endpoint import exporter_exposure_warning
from launcher.state_layout import StateLayout
from launcher.web_config import load_web_config
from observability.exporter.build import build_registry
from observability.exporter.labels import default_hostname
from observability.exporter.server import serve

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    command = OneLineErrorParser(
        prog="serve-with-monitoring exporter",
        allow_abbrev=False,
        description="GPU (NVML), host and supervisor metrics on /metrics.",
    )
    command.add_argument("--host", default=defaults.LOOPBACK, help="address to bind (default: %(default)s)")
    command.add_argument(
        "--port", type=typed(parse.port), default=defaults.EXPORTER_PORT, help="port to bind (default: %(default)s)"
    )
    command.add_argument(
        "--state-dir",
        type=typed(parse.path),
        default=None,
        help="a launcher's state dir, for supervisor metrics and the vLLM process tree",
    )
    command.add_argument(
        "--collect-interval",
        type=typed(parse.positive_seconds),
        default=defaults.COLLECT_INTERVAL_S,
        help="seconds between collections; keep it at most the scrape interval (default: %(default)s)",
    )
    command.add_argument("--hostname", default=None, help="the hostname label (default: $NODE_NAME, else this host)")
    command.add_argument(
        "--web-config-file",
        type=typed(parse.path),
        default=None,
        help="TLS and basic auth, in the exporter-toolkit format node_exporter and Prometheus use",
    )
    return command


def run_exporter(argv: list[str]) -> int:
    options = parser().parse_args(argv)
    web = load_web_config(options.web_config_file) if options.web_config_file else None
    check_port_free(options.host, options.port, "exporter (--port)")
    if web is None and is_exposed(options.host):
        log.warning("%s", exporter_exposure_warning(options.host, options.port))
    state_file = StateLayout(options.state_dir).supervisor_state if options.state_dir else None
    disk_path = Path(options.state_dir) if options.state_dir else None
    registry = build_registry(options.hostname or default_hostname(), options.collect_interval, state_file, disk_path)
    registry.start()
    log.info(
        "exporter on %s://%s:%d/metrics (collecting every %.1f s%s)",
        web.scheme if web else "http",
        options.host,
        options.port,
        options.collect_interval,
        "; basic auth on /metrics and /sd" if web is not None and web.auth else "",
    )
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        fleet = StateLayout(options.state_dir).fleet_targets if options.state_dir else None
        serve(registry, options.host, options.port, fleet, web)
    finally:
        registry.stop()
    return 0

"""`serve-with-monitoring exporter`: the exporter alone, for a node without the launcher (a Kubernetes
DaemonSet or sidecar), or as the launcher's child. Options are read and checked here; the exporter
itself (observability/exporter) is handed plain values."""

from __future__ import annotations

import argparse
import logging

from launcher import defaults
from launcher.addresses import is_exposed
from launcher.errors import UsageError
from launcher.preflight import check_port_free
from launcher.settings import value_parsers as parse
from launcher.settings.argument_parsing import OneLineErrorParser, typed
from launcher.stack.secured_endpoint import exporter_exposure_warning
from launcher.state_layout import StateLayout
from observability.exporter.main import ExporterOptions, run
from observability.exporter.web_config import WebConfigError, load_web_config

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
    try:
        web = load_web_config(options.web_config_file) if options.web_config_file else None
    except WebConfigError as error:
        raise UsageError(str(error)) from None
    check_port_free(options.host, options.port, "exporter (--port)")
    if web is None and is_exposed(options.host):
        log.warning("%s", exporter_exposure_warning(options.host, options.port))
    layout = StateLayout(options.state_dir) if options.state_dir else None
    return run(
        ExporterOptions(
            host=options.host,
            port=options.port,
            collect_interval_s=options.collect_interval,
            hostname=options.hostname,
            state_file=layout.supervisor_state if layout else None,
            disk_path=layout.root if layout else None,
            fleet_targets=layout.fleet_targets if layout else None,
            web=web,
        )
    )

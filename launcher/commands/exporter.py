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
from launcher.settings.options import BY_FLAG
from launcher.stack.secured_endpoint import exporter_exposure_warning
from launcher.state_layout import StateLayout
from observability.exporter.collector_catalog import CATALOG, NAMES, enabled_collectors
from observability.exporter.exporter_web_config import load_exporter_web_config
from observability.exporter.main import ExporterOptions, run
from observability.exporter.web_config import WebConfigError

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    command = OneLineErrorParser(
        prog="serve-with-monitoring exporter",
        allow_abbrev=False,
        description="GPU (NVML), host and supervisor metrics on /metrics.",
        # Wide enough that each --collector.NAME and its help share a line, as node_exporter's --help has them.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30),
    )
    command.add_argument("--host", default=defaults.LOOPBACK, help="address to bind (default: %(default)s)")
    command.add_argument(
        "--port", type=typed(parse.TCP_PORT), default=defaults.EXPORTER_PORT, help="port to bind (default: %(default)s)"
    )
    command.add_argument(
        "--state-dir",
        type=typed(parse.path),
        default=None,
        help="a launcher's state dir, for supervisor metrics and the vLLM process tree",
    )
    command.add_argument(
        "--collect-interval",
        type=typed(BY_FLAG["--collect-interval"].parse),  # the launcher's own bounds
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
    add_collector_switches(command)
    return command


def add_collector_switches(command: argparse.ArgumentParser) -> None:
    """node_exporter's spelling: --collector.NAME turns one on, --no-collector.NAME off. Both append to one
    list, in the order given, so the last word on a collector wins."""
    group = command.add_argument_group(
        "collectors", "each on or off by name; --no-collector.NAME turns one off, and the last of the two wins"
    )
    for entry in CATALOG:
        default = "enabled" if entry.enabled_by_default else "disabled"
        group.add_argument(
            f"--collector.{entry.name}",
            dest="collector_switches",
            action="append_const",
            const=(entry.name, True),
            help=f"{entry.help} (default: {default})",
        )
        group.add_argument(
            f"--no-collector.{entry.name}",
            dest="collector_switches",
            action="append_const",
            const=(entry.name, False),
            help=argparse.SUPPRESS,  # one line per collector in --help; the group says how to turn it off
        )


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    try:
        return parser().parse_args(argv)
    except UsageError:
        # argparse only says "unrecognized arguments"; for a misspelt collector, name the ones there are.
        for token in argv:
            flag = token.split("=", 1)[0]
            name = flag.removeprefix("--no-collector.").removeprefix("--collector.")
            if name != flag and name not in NAMES:
                raise UsageError(f"{flag}: no collector named {name!r}; collectors: {', '.join(NAMES)}") from None
        raise


def run_exporter(argv: list[str]) -> int:
    options = parse_arguments(argv)
    try:
        web = load_exporter_web_config(options.web_config_file) if options.web_config_file else None
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
            collectors=enabled_collectors(options.collector_switches or ()),
        )
    )

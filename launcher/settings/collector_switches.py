"""--no-exporter-collector and --exporter-collector are one setting per collector, whichever spelling says
it: the command line over the config file over the exporter's default. So a collector turned off in
--config is turned back on by --exporter-collector NAME on the command line, and the other collectors the
config file turned off stay off."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.errors import UsageError
from observability.exporter.collector_catalog import NAMES

ON = "exporter_collector"
OFF = "no_exporter_collector"


def merge_collector_switches(
    config: Mapping[str, Any], command_line: Mapping[str, Any], config_path: Path | None = None
) -> dict[str, tuple[str, ...]]:
    """Settings' two fields, each in catalog order; a name is in at most one of them."""
    switches = {**_switches(config, f"config file {config_path}: "), **_switches(command_line, "")}
    return {
        ON: tuple(name for name in NAMES if switches.get(name) is True),
        OFF: tuple(name for name in NAMES if switches.get(name) is False),
    }


def _switches(source: Mapping[str, Any], where: str) -> dict[str, bool]:
    on, off = tuple(source.get(ON, ())), tuple(source.get(OFF, ()))
    both = [name for name in NAMES if name in on and name in off]
    if both:
        # One source cannot say which came last (argparse keeps the two lists apart): ask, rather than guess.
        raise UsageError(
            f"{where}--exporter-collector and --no-exporter-collector both name {', '.join(both)}; keep one"
        )
    return {**dict.fromkeys(on, True), **dict.fromkeys(off, False)}

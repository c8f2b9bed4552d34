"""The two ends of remote write as configurations for real Prometheus processes, and what the receiver holds.

The sender runs the prometheus.yml the launcher itself generates (shipped rules, external labels, the loopback
`instance` renamed), with file_sd targets written where the launcher writes them; the receiver runs
deploy/fleet/prometheus-central.yml, scraping only itself."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.prometheus_child import targets_dir, write_native_config
from launcher.stack.prometheus_targets import write_target_file
from launcher.state_layout import StateLayout
from tests.support.launcher_process import REPO_ROOT
from tests.support.prometheus_api import PrometheusApi
from tests.support.prometheus_process import PrometheusProcess

CENTRAL = REPO_ROOT / "deploy" / "fleet" / "prometheus-central.yml"
TARGET_FILES = ("vllm", "exporter", "prometheus", "alertmanager")


def receiver_process(directory: Path, port: int, name: str = "receiver") -> PrometheusProcess:
    """The central Prometheus with its remote-write receiver on; not started."""
    central = yaml.safe_load(CENTRAL.read_text())
    central["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config = directory / f"{name}.yml"
    config.write_text(yaml.safe_dump(central))
    return PrometheusProcess(name, directory, port, config, "--web.enable-remote-write-receiver")


def sender_config(
    state_dir: Path,
    port: int,
    scrape_interval: float,
    remote_write_url: str | None,
    cluster: str,
    targets: Mapping[str, Sequence[str]],
) -> Path:
    """The launcher's prometheus.yml for Prometheus on `port`, with or without remote write, written into its own
    state dir; `targets` by job file (vllm, exporter, prometheus, alertmanager), each one missing left empty."""
    unknown = set(targets) - set(TARGET_FILES)
    assert not unknown, f"no target file for {unknown}"
    argv = ["--state-dir", str(state_dir), "--prometheus-port", str(port), "--scrape-interval", f"{scrape_interval:g}"]
    argv += ["--cluster", cluster, *(["--remote-write", remote_write_url] if remote_write_url else [])]
    settings = merge_settings(parse_command_line(argv))
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    config = write_native_config(settings, layout)
    for name in TARGET_FILES:
        write_target_file(targets_dir(layout) / f"{name}.json", list(targets.get(name, ())))
    return config


def raw_samples(api: PrometheusApi, selector: str, seconds: int) -> list[tuple[float, float]]:
    """(timestamp, value) of every raw sample of one series over the last `seconds`: no lookback filling."""
    result = api.query(f"{selector}[{seconds}s]")
    assert len(result) <= 1, result
    return [(float(at), float(value)) for at, value in result[0]["values"]] if result else []


def largest_gap(stamps: Sequence[float], start: float, end: float) -> float:
    """The longest stretch between `start` and `end` with no sample in it."""
    inside = [start, *[at for at in stamps if start < at < end], end]
    return max(later - earlier for earlier, later in itertools.pairwise(inside))

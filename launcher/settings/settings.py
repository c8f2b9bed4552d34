"""Settings: the command line over the config file over the defaults, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.settings.collector_switches import merge_collector_switches
from launcher.settings.command_line import CommandLine
from launcher.settings.config_file import ConfigFile, load_config_file
from launcher.settings.options import OPTIONS
from launcher.state_layout import default_state_dir
from observability.slo_objectives import Objective, Objectives


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    vllm_bin: str | None
    grace_period: float
    startup_timeout: float
    max_restarts: int
    restart_window: float
    health_interval: float
    health_failures: int
    stall_timeout: float
    max_stall_restarts: int
    canary_interval: float
    incident_keep: int
    allow_usage_stats: bool
    exporter_port: int
    exporter_host: str
    collect_interval: float
    no_exporter: bool
    no_exporter_collector: tuple[str, ...]
    exporter_collector: tuple[str, ...]
    stack: str
    keep_stack: bool
    prometheus_port: int
    grafana_port: int
    scrape_interval: float
    remote_write: tuple[str, ...]
    remote_write_config: Path | None
    cluster: str | None
    advertise_address: str | None
    alertmanager_port: int
    alert_webhook: tuple[str, ...]
    alertmanager_config: Path | None
    heartbeat_url: str | None
    runbook_base_url: str
    extra_rules: tuple[Path, ...]
    exporter_web_config: Path | None
    prometheus_host: str
    prometheus_web_config: Path | None
    prometheus_retention_size: str
    api_key_file: Path | None
    hf_token_file: Path | None
    slo_ttft_threshold: float
    slo_ttft_target: float
    slo_itl_threshold: float
    slo_itl_target: float
    slo_availability_target: float
    gpu_hourly_cost: float | None = None  # per GPU-hour, in the user's currency; None: no cost rules
    vllm_args: tuple[str, ...] = ()
    vllm_config: dict[str, Any] | None = None  # vLLM keys from --config, handed on as a file
    config_path: Path | None = None

    @property
    def objectives(self) -> Objectives:
        """The --slo-* options, as the one definition of the SLOs that rules, dashboards and `top` read."""
        return Objectives(
            ttft=Objective("ttft", self.slo_ttft_target, self.slo_ttft_threshold),
            itl=Objective("itl", self.slo_itl_target, self.slo_itl_threshold),
            availability=Objective("availability", self.slo_availability_target),
        )


def merge_settings(command_line: CommandLine, config: ConfigFile | None = None) -> Settings:
    config = config or ConfigFile()
    values: dict[str, Any] = {option.dest: option.default for option in OPTIONS if option.dest != "config"}
    values.update(config.launcher)
    values.update({key: value for key, value in command_line.launcher.items() if key != "config"})
    values.update(merge_collector_switches(config.launcher, command_line.launcher, config.path))
    if values.get("state_dir") is None:
        values["state_dir"] = default_state_dir()
    # Resolved once, here: a state dir reached through a link of the user's (/var/lib/x -> /data/x) is fine, and
    # below its real path nothing is ever followed (launcher/file_writes.py).
    values["state_dir"] = Path(values["state_dir"]).expanduser().resolve()
    return Settings(
        **values,
        vllm_args=command_line.vllm_args,
        vllm_config=dict(config.vllm) or None,
        config_path=config.path,
    )


def load_settings(command_line: CommandLine) -> Settings:
    config_path = command_line.launcher.get("config")
    config = load_config_file(config_path) if config_path else None
    return merge_settings(command_line, config)

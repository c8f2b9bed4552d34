"""The launcher's own options: one table drives the command line, the config file and --help.

Everything that is not one of these options belongs to `vllm serve` and passes through untouched.
A test checks that no name here collides with an option of the installed vLLM. `--config` is
the one deliberate overlap: ours reads a superset of vLLM's config file (see config_file.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from launcher import defaults
from launcher.settings import value_parsers as parse
from observability.exporter.collector_catalog import NAMES as COLLECTOR_NAMES


@dataclass(frozen=True)
class LauncherOption:
    flag: str
    help: str
    parse: Callable[[str], Any] | None = None  # None: a switch that takes no value
    default: Any = None
    metavar: str | None = None
    in_config: bool = True
    repeatable: bool = False  # may be given more than once (a list in the config file); collects a tuple

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def config_key(self) -> str:
        return self.flag.removeprefix("--")

    @property
    def takes_value(self) -> bool:
        return self.parse is not None


OPTIONS: tuple[LauncherOption, ...] = (
    LauncherOption(
        "--config",
        "YAML file with launcher settings and/or vLLM settings (a superset of vllm serve --config);"
        " the command line wins",
        parse.path,
        metavar="FILE",
        in_config=False,
    ),
    LauncherOption(
        "--state-dir",
        "where logs, caches, temp files and generated configs live"
        " (default: $STATE_DIRECTORY, else $XDG_STATE_HOME/serve-with-monitoring)",
        parse.path,
        metavar="DIR",
    ),
    LauncherOption(
        "--vllm-bin",
        "the vllm executable (default: the one beside this Python, else on PATH)",
        parse.name,
        metavar="PATH",
    ),
    LauncherOption(
        "--grace-period",
        "seconds vLLM gets to exit after SIGTERM before its process group is killed",
        parse.seconds_between(0, 3600),
        defaults.GRACE_PERIOD_S,
        "SECONDS",
    ),
    LauncherOption(
        "--startup-timeout",
        "seconds vLLM may take to become healthy, model download included",
        parse.seconds_between(1, 7 * 86400),
        defaults.STARTUP_TIMEOUT_S,
        "SECONDS",
    ),
    LauncherOption(
        "--max-restarts",
        "restarts allowed within --restart-window before giving up",
        parse.whole_between(0, 10_000),
        defaults.MAX_RESTARTS,
        "N",
    ),
    LauncherOption(
        "--restart-window",
        "the window, in seconds, that --max-restarts counts over",
        parse.seconds_between(1, 7 * 86400),
        defaults.RESTART_WINDOW_S,
        "SECONDS",
    ),
    LauncherOption(
        "--health-interval",
        "seconds between /health probes once vLLM is up",
        parse.seconds_between(0.5, 3600),
        defaults.HEALTH_INTERVAL_S,
        "SECONDS",
    ),
    LauncherOption(
        "--health-failures",
        "failed /health probes in a row that trigger a restart (after a miss, probes repeat every second)",
        parse.whole_between(1, 1000),
        defaults.HEALTH_FAILURES,
        "N",
    ),
    LauncherOption(
        "--stall-timeout",
        "restart vLLM when requests are pending and its /metrics show no progress for this long; 0 disables",
        parse.seconds_between(1, 86400, off=True),
        defaults.STALL_TIMEOUT_S,
        "SECONDS",
    ),
    LauncherOption(
        "--max-stall-restarts",
        "exit 4 (a person must act) when vLLM stalls again after this many stall restarts in a row without"
        " finishing a request; 0 never gives up that way",
        parse.whole_between(0, 1000),
        defaults.MAX_STALL_RESTARTS,
        "N",
    ),
    LauncherOption(
        "--canary-interval",
        "send one tiny completion after this long with nothing pending or finished, so that an engine that"
        " froze while idle is caught; 0 disables",
        parse.seconds_between(1, 86400, off=True),
        defaults.CANARY_INTERVAL_S,
        "SECONDS",
    ),
    LauncherOption(
        "--incident-keep",
        "keep the newest N incident bundles (STATE_DIR/incidents, taken at every crash, stall or failed probes);"
        " 0 takes none",
        parse.whole_between(0, 1000),
        defaults.INCIDENT_KEEP,
        "N",
    ),
    LauncherOption(
        "--exporter-port",
        "port of the GPU/host exporter's /metrics",
        parse.TCP_PORT,
        defaults.EXPORTER_PORT,
        "PORT",
    ),
    LauncherOption(
        "--exporter-host",
        "address the exporter binds (use 0.0.0.0 only behind a firewall or in a pod)",
        parse.name,
        defaults.LOOPBACK,
        "HOST",
    ),
    LauncherOption(
        "--collect-interval",
        "seconds between the exporter's collections (keep it at most the scrape interval)",
        parse.seconds_between(0.5, 300),
        defaults.COLLECT_INTERVAL_S,
        "SECONDS",
    ),
    LauncherOption(
        "--exporter-web-config",
        "TLS and basic auth for the exporter (exporter-toolkit YAML, as node_exporter's --web.config.file)",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption("--no-exporter", "do not run the GPU/host exporter", default=False),
    LauncherOption(
        "--no-exporter-collector",
        f"turn off one of the exporter's collectors (repeatable): {', '.join(COLLECTOR_NAMES)};"
        " the exporter gets --no-collector.NAME",
        parse.choice(*COLLECTOR_NAMES),
        (),
        "NAME",
        repeatable=True,
    ),
    LauncherOption(
        "--exporter-collector",
        "turn one of the exporter's collectors back on (repeatable); all are on by default, and the command"
        " line overrides --config one collector at a time",
        parse.choice(*COLLECTOR_NAMES),
        (),
        "NAME",
        repeatable=True,
    ),
    LauncherOption(
        "--stack",
        "Prometheus and Grafana: docker (compose), native (binaries as children), none, or auto",
        parse.choice("auto", "docker", "native", "none"),
        "auto",
        "MODE",
    ),
    LauncherOption("--keep-stack", "leave the docker stack running when the launcher stops", default=False),
    LauncherOption(
        "--prometheus-port", "Prometheus' port (on 127.0.0.1)", parse.TCP_PORT, defaults.PROMETHEUS_PORT, "PORT"
    ),
    LauncherOption("--grafana-port", "Grafana's port (on 127.0.0.1)", parse.TCP_PORT, defaults.GRAFANA_PORT, "PORT"),
    LauncherOption(
        "--prometheus-host",
        "address native Prometheus binds; beyond loopback it needs --prometheus-web-config",
        parse.name,
        defaults.LOOPBACK,
        "HOST",
    ),
    LauncherOption(
        "--prometheus-web-config",
        "TLS and basic auth for native Prometheus (its --web.config.file format)",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption(
        "--api-key-file",
        "a file holding vLLM's API key; it reaches vLLM as VLLM_API_KEY, never on a command line",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption(
        "--hf-token-file",
        "a file holding the Hugging Face token; it reaches vLLM as HF_TOKEN, never on a command line"
        " (a --hf-token TOKEN given on the command line goes the same way)",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption(
        "--advertise-address",
        "the address a central Prometheus reaches this host by, for the fleet target list"
        " (default: the bound address, or this host's name when bound to all interfaces)",
        parse.name,
        metavar="HOST",
    ),
    LauncherOption(
        "--prometheus-retention-size",
        "the most disk Prometheus' data may take (it keeps 30 days at most); units B, KB, MB, GB, TB",
        parse.SizeBetween("100MB", "100TB"),
        defaults.PROMETHEUS_RETENTION_SIZE,
        "SIZE",
    ),
    LauncherOption(
        "--scrape-interval",
        "seconds between Prometheus scrapes (native stack)",
        parse.seconds_between(1, 300),
        defaults.SCRAPE_INTERVAL_S,
        "SECONDS",
    ),
    LauncherOption(
        "--remote-write",
        "the local Prometheus also sends what it scrapes and records to this remote-write URL (repeatable;"
        " Mimir, Thanos Receive, VictoriaMetrics, another Prometheus); no credential in the URL: see"
        " --remote-write-config",
        parse.remote_write_url,
        (),
        "URL",
        repeatable=True,
    ),
    LauncherOption(
        "--remote-write-config",
        "a YAML file of Prometheus' own remote_write entries (auth from files, TLS, queue settings,"
        " relabelling), checked before anything starts",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption(
        "--cluster",
        "a cluster name the local Prometheus adds to everything it sends (external label cluster, beside host)",
        parse.label_value,
        metavar="NAME",
    ),
    LauncherOption(
        "--alertmanager-port", "Alertmanager's port (on 127.0.0.1)", parse.TCP_PORT, defaults.ALERTMANAGER_PORT, "PORT"
    ),
    LauncherOption(
        "--alert-webhook",
        "send alerts to this webhook URL (repeatable; Slack-compatible relays, ntfy, paging tools)."
        " A URL with a token in it is better given in --config, which ps does not show",
        parse.http_url,
        (),
        "URL",
        repeatable=True,
    ),
    LauncherOption(
        "--alertmanager-config",
        "your own Alertmanager configuration instead of the generated one (checked with amtool first)",
        parse.path,
        metavar="FILE",
    ),
    LauncherOption(
        "--heartbeat-url",
        "a dead man's switch URL (healthchecks-style) that the always-firing Heartbeat alert is sent to",
        parse.http_url,
        metavar="URL",
    ),
    LauncherOption(
        "--runbook-base-url",
        "where docs/runbooks.md is published: each alert's runbook_url is this plus #alertname",
        parse.http_url,
        defaults.RUNBOOK_BASE_URL,
        "URL",
    ),
    LauncherOption(
        "--extra-rules",
        "an extra Prometheus rule file to load beside the shipped rules (repeatable)",
        parse.path,
        (),
        "FILE",
        repeatable=True,
    ),
    LauncherOption(
        "--slo-ttft-threshold",
        "TTFT SLO: a request is good when its first token comes within this many seconds"
        " (one of vLLM's histogram bucket bounds)",
        parse.seconds_between(0.001, 3600),
        defaults.OBJECTIVES.ttft.threshold_s,
        "SECONDS",
    ),
    LauncherOption(
        "--slo-ttft-target",
        "TTFT SLO: the fraction of requests that must be good over 28 days",
        parse.FRACTION,
        defaults.OBJECTIVES.ttft.target,
        "RATIO",
    ),
    LauncherOption(
        "--slo-itl-threshold",
        "inter-token latency SLO: a token is good when it comes within this many seconds of the one before"
        " (one of vLLM's histogram bucket bounds)",
        parse.seconds_between(0.001, 3600),
        defaults.OBJECTIVES.itl.threshold_s,
        "SECONDS",
    ),
    LauncherOption(
        "--slo-itl-target",
        "inter-token latency SLO: the fraction of tokens that must be good over 28 days",
        parse.FRACTION,
        defaults.OBJECTIVES.itl.target,
        "RATIO",
    ),
    LauncherOption(
        "--slo-availability-target",
        "availability SLO: the fraction of requests that must finish without error or abort over 28 days",
        parse.FRACTION,
        defaults.OBJECTIVES.availability.target,
        "RATIO",
    ),
    LauncherOption(
        "--gpu-hourly-cost",
        "what one GPU costs per hour, in your currency: adds the cost per million tokens and of idle GPU time"
        " to the rules, the dashboard and top (none without it)",
        parse.GPU_HOURLY_COST,
        metavar="AMOUNT",
    ),
    LauncherOption(
        "--allow-usage-stats",
        "let vLLM send its usage statistics (off by default: no phone-home)",
        default=False,
    ),
)

# Options that are gone, each with where its job went. Refused with that pointer, on the command line and in
# --config alike, rather than handed to vLLM (which would reject them with its own, puzzling, message).
REMOVED: dict[str, str] = {
    "--slo-ttft-p95": "the TTFT objective is --slo-ttft-threshold SECONDS with --slo-ttft-target RATIO"
    " (one SLO per SLI; the README's Service levels section)",
    "--slo-itl-p99": "the inter-token latency objective is --slo-itl-threshold SECONDS with --slo-itl-target RATIO"
    " (one SLO per SLI; the README's Service levels section)",
}


def removed_option_message(flag: str) -> str:
    return f"{flag} was removed: {REMOVED[flag]}"


BY_FLAG: dict[str, LauncherOption] = {option.flag: option for option in OPTIONS}
BY_CONFIG_KEY: dict[str, LauncherOption] = {option.config_key: option for option in OPTIONS if option.in_config}

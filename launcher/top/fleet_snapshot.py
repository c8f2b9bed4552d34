"""The fleet as a Prometheus holds it: one line per host, from a few instant PromQL queries at "now".

It reads a central Prometheus that hosts push to (--remote-write: every series carries the external label
`host`, and `cluster` with --cluster), one that scrapes the hosts itself (deploy/fleet/prometheus.yml: the
host is the name in `instance`), or a host's own Prometheus (one host). The rates and quantiles are the
recording rules' (observability/prometheus/rules/recording.yml, evaluated on each host), with the same
expression from the raw series after `or` for a store that holds no recorded series for a host. Both sides
of each `or` keep the same labels, so that a host with both is counted once.

`FleetSnapshot.as_json()` is the documented `--once --json` document of `top --prometheus-url` (README,
"serve-with-monitoring top"): rates per second, times in seconds, ratios 0..1.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from launcher.top.sources import PrometheusUnavailable, Sample

# Grouped by every label that can name a host, so that the host is told apart however the store labels it.
_BY = "cluster, host, instance, hostname, model_name"
# A host that sent nothing for this long has left the view; under it, it is shown as silent.
SEEN_WITHIN = "1h"
# Always firing on purpose (a dead man's switch): never a reason to look at a host.
HEARTBEAT = "Heartbeat"

QUERIES: dict[str, str] = {
    # Every host that runs vLLM under the launcher has this series (the vllm scrape job).
    "seen": f'max by ({_BY}) (last_over_time(up{{job="vllm"}}[{SEEN_WITHIN}]))',
    "up": f'max by ({_BY}) (up{{job="vllm"}})',
    "state": 'swm_child_state{child="vllm"} == 1',
    "requests_per_s": f"sum by ({_BY}) (swm:vllm_requests_finished:rate5m)"
    f" or sum by ({_BY}) (rate(vllm:request_success_total[5m]))",
    "ttft_p95_s": f"max by ({_BY}) (swm:vllm_ttft_seconds:p95_5m)"
    f" or histogram_quantile(0.95, sum by ({_BY}, le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
    "kv_cache_usage_ratio": f"max by ({_BY}) (swm:vllm_kv_cache_usage:max)"
    f" or max by ({_BY}) (vllm:kv_cache_usage_perc)",
    "gpu_utilization_percent": "DCGM_FI_DEV_GPU_UTIL",
    "alerts": f'ALERTS{{alertstate="firing", alertname!="{HEARTBEAT}"}}',
}

_PORT = re.compile(r":[0-9]+$")
_SEVERITY_ORDER = {"critical": 0, "page": 0, "error": 1, "warning": 2, "info": 3}
# Who needs a look first: the states the launcher reports, worst first; healthy (or merely up) last.
_STATE_ORDER = {
    "gpu-failed": 0,
    "failed": 0,
    "no data": 1,
    "down": 1,
    "stalled": 2,
    "unhealthy": 2,
    "backoff": 3,
    "stopping": 3,
    "stopped": 3,
    "starting": 4,
}
HEALTHY_STATES = ("healthy", "up")

Query = Callable[[str], list[Sample]]


def host_of(labels: dict[str, str]) -> tuple[str, str] | None:
    """(cluster, host) of a series: the `host` label remote write adds, else the name in `instance`
    (HOST:PORT, also what remote write makes of a loopback instance), else the exporter's `hostname`."""
    host = labels.get("host") or _PORT.sub("", labels.get("instance", "")) or labels.get("hostname")
    return (labels.get("cluster", ""), host) if host else None


@dataclass
class Alert:
    name: str
    severity: str


@dataclass
class FleetHost:
    host: str
    cluster: str | None
    model: str | None = None
    # The launcher's state of vLLM (healthy, stalled, ...), or without its exporter "up"/"down" from the
    # scrape; "no data" when nothing arrived for five minutes (a host down, or its link to this store).
    state: str = "no data"
    requests_per_s: float | None = None
    ttft_p95_s: float | None = None
    kv_cache_usage_ratio: float | None = None
    gpu_utilization_ratio: float | None = None  # the mean over its GPUs
    gpus: int = 0
    alerts: list[Alert] = field(default_factory=list)

    @property
    def needs_a_look(self) -> bool:
        return self.state not in HEALTHY_STATES or bool(self.alerts)


@dataclass
class FleetSnapshot:
    at: float
    prometheus_url: str
    hosts: list[FleetHost] = field(default_factory=list)
    other_alerts: list[Alert] = field(default_factory=list)  # firing, but with no label that names a host
    waiting_for: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def _alert_order(alert: Alert) -> tuple[int, str]:
    return (_SEVERITY_ORDER.get(alert.severity, 4), alert.name)


def _alerts(samples: list[Sample]) -> list[Alert]:
    unique = {(labels.get("alertname", "?"), labels.get("severity", "")) for labels, _ in samples}
    return sorted((Alert(name, severity) for name, severity in unique), key=_alert_order)


def read_fleet(url: str, query: Query) -> FleetSnapshot:
    """Every query at once; PrometheusUnavailable when the URL does not answer as a Prometheus.
    A query that fails alone leaves its column empty, with why in waiting_for."""
    snap = FleetSnapshot(at=time.time(), prometheus_url=url)
    with ThreadPoolExecutor(max_workers=len(QUERIES)) as pool:
        futures = {key: pool.submit(query, expr) for key, expr in QUERIES.items()}
        answers: dict[str, list[Sample]] = {}
        for key, future in futures.items():
            try:
                answers[key] = future.result()
            except PrometheusUnavailable as error:
                if key == "seen":  # the one every line needs: without it there is no fleet to show
                    raise
                snap.waiting_for.append(f"{key}: {error}")
            except ValueError as error:  # Prometheus refused the query (a store without a function, say)
                snap.waiting_for.append(f"{key}: {error}")
    _assemble(snap, answers)
    return snap


def _assemble(snap: FleetSnapshot, answers: dict[str, list[Sample]]) -> None:
    hosts: dict[tuple[str, str], FleetHost] = {}
    for labels, _ in answers.get("seen", []) + answers.get("state", []):
        key = host_of(labels)
        if key is not None and key not in hosts:
            hosts[key] = FleetHost(host=key[1], cluster=key[0] or None)

    def each(answer: str) -> list[tuple[FleetHost, dict[str, str], float]]:
        return [
            (hosts[key], labels, value)
            for labels, value in answers.get(answer, [])
            if (key := host_of(labels)) is not None and key in hosts
        ]

    for host, _, value in each("up"):
        host.state = "up" if value >= 1 or host.state == "up" else "down"
    for host, labels, _ in each("state"):
        host.state = labels.get("state", host.state)
    for host, labels, value in each("requests_per_s"):
        host.requests_per_s = (host.requests_per_s or 0.0) + (_number(value) or 0.0)
        host.model = host.model or labels.get("model_name")
    for answer in ("ttft_p95_s", "kv_cache_usage_ratio"):  # the worst of the host's servers
        for host, labels, value in each(answer):
            if (number := _number(value)) is not None:
                setattr(host, answer, max(number, getattr(host, answer) or 0.0))
            host.model = host.model or labels.get("model_name")
    utilization: dict[int, list[float]] = {}
    for host, _, value in each("gpu_utilization_percent"):
        if (number := _number(value)) is not None:
            utilization.setdefault(id(host), []).append(number / 100)
            host.gpus += 1
    for host in hosts.values():
        if id(host) in utilization:
            host.gpu_utilization_ratio = sum(utilization[id(host)]) / len(utilization[id(host)])
    firing: dict[tuple[str, str] | None, list[Sample]] = {}
    for labels, value in answers.get("alerts", []):
        key = host_of(labels)
        firing.setdefault(key if key in hosts else None, []).append((labels, value))
    if len(hosts) == 1:  # a host's own Prometheus: what it fires is its own, labelled or not
        firing.setdefault(next(iter(hosts)), []).extend(firing.pop(None, []))
    for key, samples in firing.items():
        if key is None:
            snap.other_alerts = _alerts(samples)
        else:
            hosts[key].alerts = _alerts(samples)
    snap.hosts = sorted(
        hosts.values(),
        key=lambda host: (
            not host.needs_a_look,
            _STATE_ORDER.get(host.state, 5),
            -len(host.alerts),
            host.cluster or "",
            host.host,
        ),
    )

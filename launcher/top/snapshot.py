"""One screenful of facts, computed from successive readings: rates from counter deltas, latency
quantiles from histogram deltas over the window (never lifetime averages), the scheduler, the GPUs.

`Snapshot.as_json()` is the documented `--once --json` document (README, "serve-with-monitoring top"):
rates are per second, times in seconds, memory in bytes, ratios 0..1, temperatures in °C, power in W,
energy in J, costs in the currency of --gpu-hourly-cost.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from launcher.top.sources import Reading, Samples
from observability.slo_objectives import Objective, Objectives

HISTORY = 30  # sparkline points


def _total(samples: Samples | None, name: str, **labels: str) -> float | None:
    if not samples or name not in samples:
        return None
    return sum(value for found, value in samples[name] if all(found.get(k) == v for k, v in labels.items()))


def _buckets(samples: Samples | None, histogram: str) -> dict[float, float]:
    """Cumulative count per upper bound, summed over every other label."""
    found: dict[float, float] = {}
    for labels, value in (samples or {}).get(histogram + "_bucket", []):
        bound = float(labels.get("le", "nan"))
        found[bound] = found.get(bound, 0.0) + value
    return found


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile() as Prometheus computes it: linear inside the bucket; None without data."""
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the +Inf bucket: the last finite bound, as Prometheus says
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


@dataclass
class Gpu:
    gpu: str
    model: str
    utilization_ratio: float | None
    memory_used_bytes: float | None
    memory_total_bytes: float | None
    temperature_c: float | None
    power_w: float | None


@dataclass
class GpuProcess:
    gpu: str
    pid: str
    name: str
    memory_bytes: float
    in_vllm_tree: bool


@dataclass
class Snapshot:
    at: float
    window_s: float  # what the latency quantiles and window rates cover
    server: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    slo: dict[str, dict[str, Any]] = field(default_factory=dict)  # per SLI: the objective, and the window's figures
    scheduler: dict[str, Any] = field(default_factory=dict)
    engines: list[dict[str, Any]] = field(default_factory=list)  # per engine (DP rank), when there are several
    efficiency: dict[str, Any] = field(default_factory=dict)  # energy and money per token over the window
    gpus: list[Gpu] = field(default_factory=list)
    gpu_processes: list[GpuProcess] = field(default_factory=list)
    nvml_up: bool | None = None
    alerts: list[dict[str, str]] | None = None
    helpers: dict[str, str] = field(default_factory=dict)
    waiting_for: list[str] = field(default_factory=list)  # what could not be read this time, and why

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class History:
    """The readings of the last window, and the rate history the sparklines draw."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._readings: deque[Reading] = deque()
        self.sparks: dict[str, deque[float]] = {
            key: deque(maxlen=HISTORY) for key in ("requests_per_s", "prompt_tokens_per_s", "generation_tokens_per_s")
        }

    def add(self, reading: Reading) -> None:
        if reading.vllm is None:
            return  # a gap: rates and windows span it
        self._readings.append(reading)
        while len(self._readings) > 2 and reading.at - self._readings[1].at >= self.window_s:
            self._readings.popleft()
        if len(self._readings) >= 2:
            for key, value in self._rates(self._readings[-2], self._readings[-1]).items():
                if value is not None:
                    self.sparks[key].append(value)

    @staticmethod
    def _rates(older: Reading, newer: Reading) -> dict[str, float | None]:
        elapsed = newer.at - older.at
        rates: dict[str, float | None] = {}
        for key, name in (
            ("requests_per_s", "vllm:request_success_total"),
            ("prompt_tokens_per_s", "vllm:prompt_tokens_total"),
            ("generation_tokens_per_s", "vllm:generation_tokens_total"),
        ):
            now, before = _total(newer.vllm, name), _total(older.vllm, name)
            # A counter that went down: vLLM restarted. No rate across it.
            ok = now is not None and before is not None and elapsed > 0 and now >= before
            rates[key] = (now - before) / elapsed if ok else None
        return rates

    def snapshot(self, latest: Reading) -> Snapshot:
        snap = Snapshot(at=latest.at, window_s=0.0, waiting_for=sorted(latest.problems.values()))
        _server_and_helpers(snap, latest)
        _gpus(snap, latest)
        snap.alerts = (
            None
            if latest.alerts is None
            else [
                {
                    "name": alert.get("labels", {}).get("alertname", "?"),
                    "severity": alert.get("labels", {}).get("severity", ""),
                    "summary": alert.get("annotations", {}).get("summary", ""),
                }
                for alert in latest.alerts
            ]
        )
        if not self._readings:
            return snap
        newest, oldest = self._readings[-1], self._readings[0]
        snap.window_s = newest.at - oldest.at
        instant = self._rates(self._readings[-2], newest) if len(self._readings) >= 2 else {}
        snap.traffic = {**instant, "history": {key: list(values) for key, values in self.sparks.items()}}
        snap.latency = _latency(oldest.vllm, newest.vllm) if snap.window_s > 0 else {}
        objectives = Objectives.from_info(latest.status.info) if latest.status is not None else None
        if objectives is not None:
            snap.slo = _slo(objectives, oldest.vllm, newest.vllm)
        snap.scheduler = _scheduler(oldest.vllm, newest.vllm)
        snap.engines = _engines(oldest.vllm, newest.vllm)
        cost = gpu_hourly_cost_from_info(latest.status.info) if latest.status is not None else None
        snap.efficiency = _efficiency(oldest, newest, cost)
        return snap


HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
}


def _window_buckets(older: Samples | None, newer: Samples | None, histogram: str) -> dict[float, float]:
    now, before = _buckets(newer, histogram), _buckets(older, histogram)
    delta = {bound: count - before.get(bound, 0.0) for bound, count in now.items()}
    if any(value < 0 for value in delta.values()):
        return now  # vLLM restarted inside the window: its counts since then
    return delta


def _latency(older: Samples | None, newer: Samples | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, quantiles in (("ttft", (0.5, 0.95, 0.99)), ("itl", (0.5, 0.95, 0.99)), ("e2e", (0.95,))):
        delta = _window_buckets(older, newer, HISTOGRAMS[key])
        for q in quantiles:
            result[f"{key}_p{round(q * 100)}_s"] = quantile(q, delta)
        result[f"{key}_count"] = delta.get(math.inf, 0.0)
    return result


def _slo(objectives: Objectives, older: Samples | None, newer: Samples | None) -> dict[str, dict[str, Any]]:
    """Each objective as the launcher was given it, and how the window measured against it: the share of good
    events, and for latency the quantile the objective bounds (the p99 for a 0.99 target)."""
    return {objective.sli: _measured(objective, older, newer) for objective in objectives.all()}


def _measured(objective: Objective, older: Samples | None, newer: Samples | None) -> dict[str, Any]:
    figures: dict[str, Any] = {"target": objective.target}
    if objective.threshold_s is None:
        finished = _window_total(older, newer, "vllm:request_success_total")
        failed = sum(
            _window_total(older, newer, "vllm:request_success_total", finished_reason=reason) or 0.0
            for reason in ("error", "abort")
        )
        figures["good_ratio"] = 1 - failed / finished if finished else None
        return figures
    delta = _window_buckets(older, newer, HISTOGRAMS[objective.sli])
    total = delta.get(math.inf, 0.0)
    good = next((count for bound, count in delta.items() if math.isclose(bound, objective.threshold_s)), None)
    figures.update(
        threshold_s=objective.threshold_s,
        quantile=objective.quantile_name,
        quantile_s=quantile(objective.target, delta),
        good_ratio=good / total if good is not None and total > 0 else None,
    )
    return figures


def _window_total(older: Samples | None, newer: Samples | None, name: str, **labels: str) -> float | None:
    now, before = _total(newer, name, **labels), _total(older, name, **labels)
    if now is None:
        return None
    return now - before if before is not None and now >= before else now


def _scheduler(older: Samples | None, newer: Samples | None) -> dict[str, Any]:
    def delta(name: str) -> float | None:
        return _window_total(older, newer, name) if _total(older, name) is not None else None

    hits, queries = delta("vllm:prefix_cache_hits_total"), delta("vllm:prefix_cache_queries_total")
    kv = [value for _, value in (newer or {}).get("vllm:kv_cache_usage_perc", [])]
    reasons: dict[str, float] = {}
    for labels, value in (newer or {}).get("vllm:num_requests_waiting_by_reason", []):
        reasons[labels.get("reason", "?")] = reasons.get(labels.get("reason", "?"), 0.0) + value
    return {
        "running": _total(newer, "vllm:num_requests_running"),
        "waiting": _total(newer, "vllm:num_requests_waiting"),
        "waiting_by_reason": reasons,
        "kv_cache_usage_ratio": max(kv) if kv else None,
        "prefix_cache_hit_ratio": hits / queries if hits is not None and queries else None,
        "preemptions_in_window": delta("vllm:num_preemptions_total"),
    }


def _engines(older: Samples | None, newer: Samples | None) -> list[dict[str, Any]]:
    """Each engine's queue, KV cache and finished requests over the window: one rank stuck while the others
    serve shows here, where the server's totals hide it."""
    names = sorted({labels.get("engine", "") for labels, _ in (newer or {}).get("vllm:num_requests_running", [])})
    if len(names) < 2:
        return []
    engines = []
    for engine in names:
        kv = [
            value
            for labels, value in (newer or {}).get("vllm:kv_cache_usage_perc", [])
            if labels.get("engine") == engine
        ]
        engines.append(
            {
                "engine": engine,
                "running": _total(newer, "vllm:num_requests_running", engine=engine),
                "waiting": _total(newer, "vllm:num_requests_waiting", engine=engine),
                "kv_cache_usage_ratio": max(kv) if kv else None,
                "finished_in_window": _window_total(older, newer, "vllm:request_success_total", engine=engine),
            }
        )
    return engines


def _server_and_helpers(snap: Snapshot, reading: Reading) -> None:
    status = reading.status
    model = None
    if reading.vllm:
        names = {labels.get("model_name") for labels, _ in reading.vllm.get("vllm:num_requests_running", [])}
        model = next(iter(sorted(name for name in names if name)), None)
    snap.server = {"model": model, "vllm_version": reading.vllm_version}
    if status is None:
        return
    vllm = status.child("vllm")
    model = model or status.info.get("model_name")
    if vllm is not None:
        snap.server.update(
            model=model,
            state=vllm.state,
            uptime_s=(time.time() - vllm.started_at) if vllm.started_at and vllm.pid else None,
            restarts=vllm.restarts_total,
            last_exit_code=vllm.last_exit_code,
            reason=vllm.reason or vllm.message or "",
            last_incident=asdict(vllm.last_incident) if vllm.last_incident else None,
        )
    for name in ("exporter", "prometheus", "alertmanager", "grafana", "stack"):
        child = status.child(name)
        if child is not None:
            snap.helpers[name] = child.state


def _gpus(snap: Snapshot, reading: Reading) -> None:
    samples = reading.exporter
    if samples is None:
        return
    snap.nvml_up = bool(_total(samples, "swm_nvml_up"))
    rows: dict[str, dict[str, Any]] = {}
    for name, key, scale in (
        ("DCGM_FI_DEV_GPU_UTIL", "utilization_ratio", 0.01),
        ("DCGM_FI_DEV_FB_USED", "memory_used_bytes", 2**20),
        ("DCGM_FI_DEV_FB_TOTAL", "memory_total_bytes", 2**20),
        ("DCGM_FI_DEV_GPU_TEMP", "temperature_c", 1.0),
        ("DCGM_FI_DEV_POWER_USAGE", "power_w", 1.0),
    ):
        for labels, value in samples.get(name, []):
            row = rows.setdefault(labels.get("gpu", "?"), {"model": labels.get("modelName", "")})
            row[key] = value * scale
    for gpu, row in sorted(rows.items()):
        snap.gpus.append(
            Gpu(
                gpu=gpu,
                model=row.get("model", ""),
                utilization_ratio=row.get("utilization_ratio"),
                memory_used_bytes=row.get("memory_used_bytes"),
                memory_total_bytes=row.get("memory_total_bytes"),
                temperature_c=row.get("temperature_c"),
                power_w=row.get("power_w"),
            )
        )
    for labels, value in samples.get("swm_gpu_process_memory_used_bytes", []):
        snap.gpu_processes.append(
            GpuProcess(
                gpu=labels.get("gpu", "?"),
                pid=labels.get("pid", "?"),
                name=labels.get("process_name", "?"),
                memory_bytes=value,
                in_vllm_tree=labels.get("in_vllm_tree") == "true",
            )
        )
    snap.gpu_processes.sort(key=lambda process: -process.memory_bytes)


JOULES_PER_KWH = 3.6e6


def gpu_hourly_cost_from_info(info: dict[str, Any]) -> float | None:
    """The launcher's --gpu-hourly-cost from its status info; None when not set (or unreadable)."""
    try:
        value = float(info["gpu_hourly_cost"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _vllm_gpu_energy(samples: Samples | None) -> dict[str, float]:
    """Energy counter (J) per GPU that vLLM's processes use right now (swm_gpu_used_by_vllm == 1)."""
    used = {labels.get("UUID") for labels, value in (samples or {}).get("swm_gpu_used_by_vllm", []) if value == 1}
    return {
        labels["UUID"]: value
        for labels, value in (samples or {}).get("swm_gpu_energy_joules_total", [])
        if labels.get("UUID") in used
    }


def _strict_delta(older: Samples | None, newer: Samples | None, name: str) -> float | None:
    """A counter's increase over the window; None across a restart (a figure per token would mix runs)."""
    now, before = _total(newer, name), _total(older, name)
    return now - before if now is not None and before is not None and now >= before else None


def _efficiency(older: Reading, newer: Reading, gpu_hourly_cost: float | None) -> dict[str, Any]:
    """Joules per token and cost per million tokens over the window, as the efficiency rules compute them
    (observability/efficiency_rules.py): the energy of vLLM's GPUs over the tokens of the same window. A figure
    without a token, or across a counter reset, is None."""
    window = newer.at - older.at
    now, before = _vllm_gpu_energy(newer.exporter), _vllm_gpu_energy(older.exporter)
    energy = None
    if now and window > 0 and all(uuid in before and now[uuid] >= before[uuid] for uuid in now):
        energy = sum(now[uuid] - before[uuid] for uuid in now)
    generated = _strict_delta(older.vllm, newer.vllm, "vllm:generation_tokens_total")
    prompt = _strict_delta(older.vllm, newer.vllm, "vllm:prompt_tokens_total")
    tokens = generated + prompt if generated is not None and prompt is not None else None

    def per(amount: float | None, count: float | None, scale: float = 1.0) -> float | None:
        return amount / count * scale if amount is not None and count else None

    joules_per_token = per(energy, tokens)
    gpu_cost = gpu_hourly_cost * len(now) * window / 3600 if gpu_hourly_cost is not None and now else None
    return {
        "vllm_gpus": len(now),
        "energy_j": energy,
        "power_w": per(energy, window),
        "joules_per_generation_token": per(energy, generated),
        "joules_per_token": joules_per_token,
        "tokens_per_kwh": JOULES_PER_KWH / joules_per_token if joules_per_token else None,
        "gpu_hourly_cost": gpu_hourly_cost,
        "cost_per_million_generation_tokens": per(gpu_cost, generated, 1e6),
        "cost_per_million_tokens": per(gpu_cost, tokens, 1e6),
    }

"""A snapshot as a screen: rich text that fits 80x24 and uses the width it is given. Colours only mark
what needs a look (over an SLO, an alert, a helper not healthy); NO_COLOR turns them off."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from launcher.top.snapshot import Snapshot

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    values = values[-width:]
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, int(value / top * (len(_BARS) - 1)))] for value in values)


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _short(value: float | None) -> str:
    """About three figures, whatever the scale: 0.00412, 41.2, 8.6M."""
    if value is None:
        return "-"
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size * 0.9995:  # what .3g would round up to 1e+03
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _efficiency(efficiency: dict) -> str | None:
    """Only where there is energy data: no exporter, or no GPU of vLLM's, leaves the screen as it was."""
    if efficiency.get("energy_j") is None:
        return None
    line = (
        f"efficiency J/token {_short(efficiency['joules_per_token'])}"
        f"  J/gen tok {_short(efficiency['joules_per_generation_token'])}"
        f"  tok/kWh {_short(efficiency['tokens_per_kwh'])}"
    )
    if efficiency.get("gpu_hourly_cost") is not None:
        line += f"  cost/1M tok {_short(efficiency['cost_per_million_tokens'])}"
    return line


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}B"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _versus(value: float | None, slo: float | None) -> Text:
    text = Text(_seconds(value))
    if value is not None and slo is not None and value > slo:
        text.stylize("bold red")
        text.append(f">{_seconds(slo)}", style="red")
    return text


def _state(state: str | None) -> Text:
    style = {"healthy": "green", "starting": "yellow", "backoff": "yellow"}.get(state or "", "bold red")
    return Text(state or "-", style=style)


def _engine(engine: dict) -> str:
    kv = engine["kv_cache_usage_ratio"]
    return (
        f"{engine['engine']}: {_number(engine['running'], 0)} run {_number(engine['waiting'], 0)} wait"
        f" KV {f'{kv * 100:.0f}%' if kv is not None else '-'} done {_number(engine['finished_in_window'], 0)}"
    )


def render(snap: Snapshot, width: int) -> RenderableType:
    server, traffic, latency, scheduler = snap.server, snap.traffic, snap.latency, snap.scheduler
    parts: list[RenderableType] = []

    head = Text()
    head.append("serve-with-monitoring top", style="bold")
    head.append(f"  {time.strftime('%H:%M:%S', time.localtime(snap.at))}  ")
    head.append(f"model {server.get('model') or '-'}", style="bold cyan")
    status = Text(f"vLLM {server.get('vllm_version') or '-'}  ")
    status.append_text(_state(server.get("state")))
    status.append(f"  up {_duration(server.get('uptime_s'))}  restarts {server.get('restarts', '-')}")
    if len(head.plain) + 2 + len(status.plain) < width:
        parts.append(Text.assemble(head, "  ", status))
    else:  # split where it reads well, rather than where the terminal happens to wrap
        parts.extend([head, Text.assemble("server    ", status)])
    if server.get("reason"):
        parts.append(Text(f"last: {server['reason']}"[: width - 1], style="yellow"))
    incident = server.get("last_incident")
    if incident:
        ago = _duration(snap.at - incident["at"])
        text = f"incident  {incident['reason']} {ago} ago: {incident['bundle']}"
        parts.append(Text(text[: width - 1], style="yellow" if snap.at - incident["at"] < 900 else ""))
    for problem in snap.waiting_for:
        parts.append(Text(f"waiting for: {problem}"[: width - 1], style="yellow"))

    history = traffic.get("history", {})
    rates = [
        (key, f"{label} {_number(traffic.get(key))} ")
        for key, label in (
            ("requests_per_s", "req/s"),
            ("prompt_tokens_per_s", "prompt tok/s"),
            ("generation_tokens_per_s", "gen tok/s"),
        )
    ]
    # The sparklines get what the numbers leave of the line, so that it never wraps.
    spark = max(3, (width - 1 - len("traffic   ") - sum(len(text) + 2 for _, text in rates)) // len(rates))
    line = Text("traffic   ")
    for key, text in rates:
        line.append(text)
        line.append(sparkline(history.get(key, []), spark), style="cyan")
        line.append("  ")
    parts.append(line)

    line = Text(f"latency   last {snap.window_s:.0f}s")
    for sli, label, unmarked in (("ttft", "TTFT", "p95"), ("itl", "ITL", "p99")):
        # The quantile the SLO bounds (p99 for a 0.99 target), marked against its threshold.
        slo = snap.slo.get(sli)
        line.append(f"  {label} p50 ")
        line.append_text(_versus(latency.get(f"{sli}_p50_s"), None))
        if slo is None:
            line.append(f" {unmarked} ")
            line.append_text(_versus(latency.get(f"{sli}_{unmarked}_s"), None))
        else:
            line.append(f" {slo['quantile']} ")
            line.append_text(_versus(slo["quantile_s"], slo["threshold_s"]))
    line.append(f"  E2E p95 {_seconds(latency.get('e2e_p95_s'))}")
    parts.append(line)

    reasons = ", ".join(f"{k} {v:.0f}" for k, v in scheduler.get("waiting_by_reason", {}).items() if v)
    kv = scheduler.get("kv_cache_usage_ratio")
    hit = scheduler.get("prefix_cache_hit_ratio")
    line = Text(
        f"scheduler running {_number(scheduler.get('running'), 0)}  waiting {_number(scheduler.get('waiting'), 0)}"
        + (f" ({reasons})" if reasons else "")
    )
    line.append("  KV cache ")
    line.append(f"{kv * 100:.1f}%" if kv is not None else "-", style="bold red" if kv and kv > 0.9 else "")
    line.append(f"  prefix hits {hit * 100:.0f}%" if hit is not None else "  prefix hits -")
    line.append(f"  preemptions {_number(scheduler.get('preemptions_in_window'), 0)}")
    parts.append(line)
    if snap.engines:
        parts.append(Text(("engines   " + "  ".join(_engine(engine) for engine in snap.engines))[: width - 1]))
    efficiency = _efficiency(snap.efficiency)
    if efficiency is not None:
        parts.append(Text(efficiency[: width - 1]))

    if snap.nvml_up is False:
        parts.append(Text("GPUs      no GPU (NVML unavailable)"))
    elif snap.gpus:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", expand=False)
        for column in ("GPU", "model", "util", "memory", "temp", "power"):
            table.add_column(column)
        for gpu in snap.gpus[:4]:
            util = gpu.utilization_ratio
            table.add_row(
                gpu.gpu,
                gpu.model[: max(10, width - 50)],
                f"{util * 100:.0f}%" if util is not None else "-",
                f"{_bytes(gpu.memory_used_bytes)}/{_bytes(gpu.memory_total_bytes)}",
                f"{gpu.temperature_c:.0f}C" if gpu.temperature_c is not None else "-",
                f"{gpu.power_w:.0f}W" if gpu.power_w is not None else "-",
            )
        parts.append(table)
        for process in snap.gpu_processes[:3]:
            owner = "vLLM" if process.in_vllm_tree else "other"
            parts.append(
                Text(f"  GPU {process.gpu} pid {process.pid} {process.name} {_bytes(process.memory_bytes)} ({owner})")
            )
    elif snap.nvml_up is None:
        parts.append(Text("GPUs      - (no exporter)"))

    if snap.alerts is not None:
        if snap.alerts:
            alerts = [alert for alert in snap.alerts if alert["name"] != "Heartbeat"] or snap.alerts
            for alert in alerts[:3]:
                style = "bold red" if alert["severity"] in ("critical", "page") else "yellow"
                text = f"alert     {alert['name']} ({alert['severity']}): {alert['summary']}"
                parts.append(Text(text[: width - 1], style=style if alert["name"] != "Heartbeat" else ""))
        else:
            parts.append(Text("alerts    none firing", style="green"))

    if snap.helpers:
        line = Text("helpers   ")
        for name, state in snap.helpers.items():
            line.append(f"{name} ")
            line.append_text(_state(state))
            line.append("  ")
        parts.append(line)
    parts.append(Text("q quits", style="dim"))
    return Group(*parts)

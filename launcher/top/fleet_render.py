"""The fleet as a screen: one line per host, hosts that need a look first, within the terminal's width and
height (the rest behind "+N more", scrolled with the arrow keys). Colours mark what needs a look; NO_COLOR
turns them off, as in the one-host view."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.text import Text

from launcher.top.fleet_snapshot import Alert, FleetHost, FleetSnapshot
from launcher.top.render import _number, _seconds, _state

_MAX_PROBLEM_LINES = 2
# state, req/s, TTFT p95, KV, GPU: fixed widths; the host and the alerts share what the line has left.
_COLUMNS = (("state", 10, "<"), ("req/s", 7, ">"), ("TTFT p95", 9, ">"), ("KV", 5, ">"), ("GPU", 5, ">"))
_FIXED = sum(width + 1 for _, width, _ in _COLUMNS)
_URGENT = ("critical", "page")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.0f}%"


def _name(host: FleetHost) -> str:
    return f"{host.cluster}/{host.host}" if host.cluster else host.host


def _alerts_text(alerts: list[Alert], width: int) -> Text:
    if not alerts:
        return Text("-")
    style = "bold red" if any(alert.severity in _URGENT for alert in alerts) else "yellow"
    return Text(_fit(f"{len(alerts)} " + ", ".join(alert.name for alert in alerts), width), style=style)


def _widths(snap: FleetSnapshot, width: int) -> tuple[int, int]:
    """(host, alerts) column widths for a line of at most width - 1 characters."""
    room = max(20, width - 1 - _FIXED)
    longest = max((len(_name(host)) for host in snap.hosts), default=4)
    host = max(8, min(longest, 30, room - 12))
    return host, room - host - 1


def _line(host: FleetHost, host_width: int, alerts_width: int) -> Text:
    line = Text(_fit(_name(host), host_width).ljust(host_width) + " ")
    line.append(_fit(host.state, 10).ljust(10), style=_state(host.state if host.state != "up" else "healthy").style)
    line.append(" " + _number(host.requests_per_s).rjust(7))
    line.append(" " + _seconds(host.ttft_p95_s).rjust(9))
    kv = host.kv_cache_usage_ratio
    line.append(" " + _percent(kv).rjust(5), style="bold red" if kv is not None and kv > 0.9 else "")
    line.append(" " + _percent(host.gpu_utilization_ratio).rjust(5) + " ")
    line.append_text(_alerts_text(host.alerts, alerts_width))
    return line


def _head(snap: FleetSnapshot, width: int) -> list[Text]:
    title = Text("serve-with-monitoring top", style="bold")
    title.append(f"  {time.strftime('%H:%M:%S', time.localtime(snap.at))}  fleet {snap.prometheus_url}")
    title.truncate(width - 1)
    looking = sum(host.needs_a_look for host in snap.hosts)
    firing = sum(len(host.alerts) for host in snap.hosts) + len(snap.other_alerts)
    summary = Text(f"{len(snap.hosts)} host{'s' if len(snap.hosts) != 1 else ''}  ")
    summary.append(f"{looking} need a look", style="bold red" if looking else "green")
    summary.append(f"  {firing} alert{'s' if firing != 1 else ''} firing")
    if snap.other_alerts:
        names = ", ".join(alert.name for alert in snap.other_alerts)
        summary.append(f" ({len(snap.other_alerts)} on no host: {names})", style="yellow")
    summary.truncate(width - 1)
    lines = [title, summary]
    for problem in snap.waiting_for[:_MAX_PROBLEM_LINES]:
        lines.append(Text(_fit(f"waiting for: {problem}", width - 1), style="yellow"))
    return lines


def rows_that_fit(snap: FleetSnapshot, height: int | None) -> int:
    """How many host lines the screen has room for: all of them without a height (--once)."""
    if height is None:
        return len(snap.hosts)
    fixed = len(_head(snap, 80)) + 2  # the column header and the key line
    rows = max(1, height - fixed)
    return rows if len(snap.hosts) <= rows else max(1, rows - 1)  # one line says how many more


def render_fleet(snap: FleetSnapshot, width: int, height: int | None = None, offset: int = 0) -> RenderableType:
    host_width, alerts_width = _widths(snap, width)
    parts: list[RenderableType] = list(_head(snap, width))
    header = (
        "host".ljust(host_width)
        + " "
        + " ".join(name.ljust(size) if align == "<" else name.rjust(size) for name, size, align in _COLUMNS)
    )
    parts.append(Text(_fit(header + " alerts", width - 1), style="bold"))
    if not snap.hosts:
        parts.append(Text('no vLLM host has sent anything for an hour (no up{job="vllm"} series)'[: width - 1]))
    rows = rows_that_fit(snap, height)
    offset = max(0, min(offset, len(snap.hosts) - rows))
    shown = snap.hosts[offset : offset + rows]
    parts.extend(_line(host, host_width, alerts_width) for host in shown)
    below, above = len(snap.hosts) - offset - len(shown), offset
    scrolls = below > 0 or above > 0
    if scrolls:
        more = [f"+{below} more" if below else "", f"{above} above" if above else ""]
        parts.append(Text(_fit("  ".join(part for part in more if part) + "  (↑↓ scroll)", width - 1), style="dim"))
    parts.append(Text("q quits" + ("  ↑↓ PgUp PgDn scroll" if scrolls else ""), style="dim"))
    return Group(*parts)

"""`serve-with-monitoring top [--state-dir DIR | --vllm-url URL] [--interval 2] [--window 60] [--once [--json]]`
`serve-with-monitoring top --prometheus-url URL [--interval 2] [--once [--json]]`: the fleet, a line per host

The live view redraws every --interval seconds on the terminal's alternate screen and quits on q or
Ctrl-C, leaving the terminal as it was. --once prints one snapshot (text, or JSON with --json) after
two readings --interval apart, so that rates and quantiles cover that interval; the fleet's come from
Prometheus' rules, so its --once reads once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import termios
import time
import tty
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.live import Live

from launcher.errors import EXIT_GAVE_UP
from launcher.settings import value_parsers as parse
from launcher.settings.argument_parsing import OneLineErrorParser, typed
from launcher.state_layout import default_state_dir
from launcher.top.fleet_render import render_fleet, rows_that_fit
from launcher.top.fleet_snapshot import FleetSnapshot, read_fleet
from launcher.top.render import render
from launcher.top.snapshot import History, Snapshot
from launcher.top.sources import PrometheusUnavailable, Reading, Sources, locate, prometheus_query, read

PROG = "serve-with-monitoring top"


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """rich would exit 1 here; the launcher's main() ends every subcommand alike on a closed stdout."""
        self.quiet = True  # nothing more to write, not even the live view's restoring of the screen
        raise BrokenPipeError


DEFAULT_WINDOW_S = 60.0


def _parser() -> OneLineErrorParser:
    command = OneLineErrorParser(prog=PROG, allow_abbrev=False, description="A live view of the supervised server.")
    command.add_argument("--state-dir", type=typed(parse.path), default=None, help="the launcher's state dir")
    command.add_argument("--vllm-url", type=typed(parse.http_url), default=None, help="vLLM's base URL")
    command.add_argument("--exporter-url", type=typed(parse.http_url), default=None, help="the exporter's /metrics")
    command.add_argument(
        "--prometheus-url",
        type=typed(parse.http_url),
        default=None,
        help="the fleet instead: a line per host, from this Prometheus (a central one that hosts push to)",
    )
    command.add_argument(
        "--interval", type=typed(parse.seconds_between(0.05, 3600)), default=2.0, help="seconds between refreshes"
    )
    command.add_argument(
        "--window",
        type=typed(parse.seconds_between(1, 86400)),
        default=None,
        help=f"the live view's latency window, seconds (default {DEFAULT_WINDOW_S:g}); --once measures over --interval",
    )
    command.add_argument("--once", action="store_true", help="print one snapshot and exit")
    command.add_argument("--json", action="store_true", help="with --once: JSON (keys and units in the README)")
    return command


def _snapshot_once(sources: Sources, interval: float, window: float) -> tuple[Snapshot, Reading]:
    history = History(window)
    first = read(sources)
    if "vllm" in first.problems:
        return history.snapshot(first), first  # nothing to wait for
    history.add(first)
    time.sleep(interval)
    latest = read(sources)
    history.add(latest)
    return history.snapshot(latest), latest


@contextlib.contextmanager
def _keys() -> Iterator[int | None]:
    """The terminal in cbreak mode (keys arrive one by one, Ctrl-C still interrupts), restored after."""
    if not sys.stdin.isatty():
        yield None
        return
    descriptor = sys.stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    try:
        tty.setcbreak(descriptor)
        yield descriptor
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _quit_pressed(descriptor: int | None, timeout: float) -> bool:
    if descriptor is None:
        time.sleep(timeout)
        return False
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([descriptor], [], [], left)
        if ready and os.read(descriptor, 32).lower().startswith(b"q"):
            return True
    return False


# Keys of the fleet view's scrolling, as a terminal in cbreak mode sends them -> lines (None: a page)
_SCROLL_KEYS: dict[bytes, tuple[int, bool]] = {
    b"\x1b[A": (-1, False),
    b"\x1b[B": (1, False),
    b"k": (-1, False),
    b"j": (1, False),
    b"\x1b[5~": (-1, True),
    b"\x1b[6~": (1, True),
    b" ": (1, True),
}


def _keys_within(descriptor: int | None, timeout: float) -> Iterator[bytes]:
    """Each key pressed within the next `timeout` seconds, as it comes."""
    if descriptor is None:
        time.sleep(timeout)
        return
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([descriptor], [], [], left)
        if not ready:
            continue
        pressed = os.read(descriptor, 32)
        while pressed:  # several keys can arrive in one read (a held arrow key)
            key = next((known for known in _SCROLL_KEYS if pressed.startswith(known)), pressed[:1])
            pressed = pressed[len(key) :]
            yield key


def _fleet_reading(url: str, query: Callable[[str], list]) -> FleetSnapshot:
    try:
        return read_fleet(url, query)
    except PrometheusUnavailable as problem:
        return FleetSnapshot(at=time.time(), prometheus_url=url, waiting_for=[str(problem)])


def _fleet_live(url: str, interval: float, console: Console) -> int:
    query = prometheus_query(url)
    offset = 0
    with _keys() as descriptor, Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            snap = _fleet_reading(url, query)
            live.update(render_fleet(snap, console.width, console.height, offset), refresh=True)
            for key in _keys_within(descriptor, interval):
                if key.lower() == b"q":
                    return 0
                if key not in _SCROLL_KEYS:
                    continue
                rows = rows_that_fit(snap, console.height)
                step, page = _SCROLL_KEYS[key]
                offset = max(0, min(offset + step * (rows if page else 1), len(snap.hosts) - rows))
                live.update(render_fleet(snap, console.width, console.height, offset), refresh=True)


def _fleet(parser: OneLineErrorParser, options: argparse.Namespace, console: Console) -> int:
    url = options.prometheus_url.rstrip("/")
    others = [
        flag
        for flag, value in (
            ("--state-dir", options.state_dir),
            ("--vllm-url", options.vllm_url),
            ("--exporter-url", options.exporter_url),
            ("--window", options.window),
        )
        if value is not None
    ]
    if others:
        parser.error(f"--prometheus-url shows the fleet from Prometheus' rules; it takes no {', '.join(others)}")
    if urllib.parse.urlsplit(url).username is not None:
        # An argument is visible to every user of the machine (ps); urllib would not send it either.
        parser.error("--prometheus-url: expected a URL without user:password@")
    if not options.once:
        try:
            return _fleet_live(url, options.interval, console)
        except KeyboardInterrupt:
            return 0
    try:
        snap = read_fleet(url, prometheus_query(url))
    except PrometheusUnavailable as problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return EXIT_GAVE_UP
    if options.json:
        print(json.dumps(snap.as_json(), indent=1))
    else:
        width = console.width if console.is_terminal else 100
        _Console(width=width, no_color=True).print(render_fleet(snap, width))
    return 0


def _live(sources: Sources, interval: float, window: float, console: Console) -> int:
    history = History(window)
    with _keys() as descriptor, Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            reading = read(sources)
            history.add(reading)
            live.update(render(history.snapshot(reading), console.width), refresh=True)
            if _quit_pressed(descriptor, interval):
                return 0


def run_top(argv: list[str]) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.prometheus_url is not None:
        return _fleet(parser, options, _Console())
    if options.once and options.window is not None:
        # Silently ignoring it would print a figure over another span than the one asked for.
        parser.error("--window is the live view's; --once measures over its two readings --interval apart")
    window = DEFAULT_WINDOW_S if options.window is None else options.window
    state_dir = options.state_dir or default_state_dir()
    sources = locate(Path(state_dir).absolute(), options.vllm_url, options.exporter_url)
    console = _Console()  # rich follows NO_COLOR and the terminal's width
    if options.once:
        snap, latest = _snapshot_once(sources, options.interval, window)
        if "vllm" in latest.problems:
            print(f"{PROG}: error: {latest.problems['vllm']}", file=sys.stderr)
            return EXIT_GAVE_UP
        if options.json:
            print(json.dumps(snap.as_json(), indent=1, default=str))
        else:
            _Console(width=console.width if console.is_terminal else 100, no_color=True).print(
                render(snap, console.width if console.is_terminal else 100)
            )
        return 0
    try:
        return _live(sources, options.interval, window, console)
    except KeyboardInterrupt:
        return 0

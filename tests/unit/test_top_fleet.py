"""`serve-with-monitoring top --prometheus-url URL`, the fleet view, against a REAL Prometheus: synthetic series
of four hosts over the last 30 minutes, written as OpenMetrics and backfilled with `promtool tsdb
create-blocks-from openmetrics`, then served by .venv/bin/prometheus on a loopback port. No vLLM.

The hosts, as a central store would hold them:
  gpu-a  pushes (remote write: labels host and cluster), healthy, recorded series (swm:...) beside raw ones
         that disagree with them, two GPUs, one alert firing
  gpu-b  pushes, stalled, raw series only (the recorded ones are missing: `or` computes them), a critical alert
  gpu-c  pushes, went silent 20 minutes ago
  gpu-d.example  scraped by the central Prometheus itself: no host label, no exporter
plus the always-firing Heartbeat and an alert that names no host. Against the real vLLM:
tests/integration/test_top_fleet_of_one.py."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from launcher.errors import EXIT_GAVE_UP, EXIT_USAGE
from launcher.top import command
from launcher.top.fleet_render import render_fleet, rows_that_fit
from launcher.top.fleet_snapshot import QUERIES, FleetSnapshot, host_of, read_fleet
from launcher.top.sources import prometheus_query
from tests.support.launcher_process import REPO_ROOT, free_port
from tests.unit.test_top_options import LiveView, _colour_codes, _environment

BIN = Path(sys.executable).parent
STEP_S = 15
SPAN_S = 30 * 60
TTFT_BOUNDS = ("0.1", "0.25", "0.5", "+Inf")
TTFT_SHARES = (0.5, 0.9, 1.0, 1.0)  # cumulative: p95 is 0.25 + 0.25 * (0.95 - 0.9) / 0.1 = 0.375 s


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


class OpenMetrics:
    """Samples by family, each series' samples in time order, as `promtool tsdb create-blocks-from` reads."""

    def __init__(self) -> None:
        self.families: dict[str, list[str]] = {}

    def series(self, family: str, name: str, labels: dict[str, str], value, start: float, end: float) -> None:
        lines = self.families.setdefault(family, [])
        at = start
        while at <= end:
            lines.append(f"{name}{_labels(**labels)} {value(at - start):g} {at:.3f}")
            at += STEP_S

    def text(self) -> str:
        out = []
        for lines in self.families.values():
            out.extend(lines)
        return "\n".join([*out, "# EOF"]) + "\n"


def _constant(value: float):
    return lambda elapsed: value


def _counter(per_s: float):
    return lambda elapsed: per_s * elapsed


def fleet_series(now: float) -> str:
    start, metrics = now - SPAN_S, OpenMetrics()
    hosts = {
        "gpu-a": {"host": "gpu-a", "cluster": "east", "instance": "gpu-a:8000"},
        "gpu-b": {"host": "gpu-b", "cluster": "east", "instance": "gpu-b:8000"},
        "gpu-c": {"host": "gpu-c", "cluster": "east", "instance": "gpu-c:8000"},
        "gpu-d": {"instance": "gpu-d.example:8000"},
    }
    ends = {"gpu-a": now, "gpu-b": now, "gpu-c": now - 20 * 60, "gpu-d": now}
    for name, labels in hosts.items():
        end = ends[name]
        metrics.series("up", "up", {**labels, "job": "vllm"}, _constant(1), start, end)
        served = {**labels, "job": "vllm", "model_name": "tiny-llama"}
        metrics.series("vllm:kv_cache_usage_perc", "vllm:kv_cache_usage_perc", served, _constant(0.1), start, end)
        for reason, per_s in (("stop", 0.4), ("length", 0.1)):
            metrics.series(
                "vllm:request_success",
                "vllm:request_success_total",
                {**served, "finished_reason": reason},
                _counter(per_s),
                start,
                end,
            )
        for bound, share in zip(TTFT_BOUNDS, TTFT_SHARES, strict=True):
            metrics.series(
                "vllm:time_to_first_token_seconds",
                "vllm:time_to_first_token_seconds_bucket",
                {**served, "le": bound},
                _counter(0.5 * share),
                start,
                end,
            )
        if name == "gpu-d":
            continue  # no exporter there
        exporter = {**labels, "job": "swm-exporter", "instance": labels["instance"].replace(":8000", ":9402")}
        state = {"gpu-a": "healthy", "gpu-b": "stalled", "gpu-c": "healthy"}[name]
        for each in ("healthy", "stalled", "starting"):
            metrics.series(
                "swm_child_state",
                "swm_child_state",
                {**exporter, "child": "vllm", "state": each},
                _constant(1 if each == state else 0),
                start,
                end,
            )
        for gpu, util in {"gpu-a": ((0, 80), (1, 60)), "gpu-b": ((0, 0),), "gpu-c": ((0, 50),)}[name]:
            metrics.series(
                "DCGM_FI_DEV_GPU_UTIL",
                "DCGM_FI_DEV_GPU_UTIL",
                {**exporter, "gpu": str(gpu), "hostname": name},
                _constant(util),
                start,
                end,
            )
    # gpu-a's own rules recorded these (and its raw series above say otherwise: the recorded ones win)
    recorded = {**hosts["gpu-a"], "model_name": "tiny-llama"}  # by (instance, model_name), and the external labels
    for reason, rate in (("stop", 1.5), ("length", 0.5)):
        metrics.series(
            "swm:vllm_requests_finished:rate5m",
            "swm:vllm_requests_finished:rate5m",
            {**recorded, "finished_reason": reason},
            _constant(rate),
            start,
            now,
        )
    metrics.series(
        "swm:vllm_ttft_seconds:p95_5m", "swm:vllm_ttft_seconds:p95_5m", recorded, _constant(0.12), start, now
    )
    metrics.series("swm:vllm_kv_cache_usage:max", "swm:vllm_kv_cache_usage:max", recorded, _constant(0.42), start, now)
    for labels in (
        {**hosts["gpu-a"], "alertname": "VllmQueueLong", "severity": "warning"},
        {**hosts["gpu-b"], "alertname": "VllmStalled", "severity": "critical"},
        {**hosts["gpu-b"], "alertname": "VllmNoProgress", "severity": "warning"},
        {"host": "gpu-b", "cluster": "east", "alertname": "Heartbeat", "severity": "none"},
        {"alertname": "GpuUnderutilized", "severity": "info"},
    ):
        metrics.series("ALERTS", "ALERTS", {**labels, "alertstate": "firing"}, _constant(1), start, now)
    metrics.series(
        "ALERTS",
        "ALERTS",
        {**hosts["gpu-a"], "alertname": "VllmPreemptions", "alertstate": "pending", "severity": "warning"},
        _constant(1),
        start,
        now,
    )
    return metrics.text()


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """A real Prometheus over backfilled blocks, its samples ending now; its URL."""
    directory = tmp_path_factory.mktemp("central")
    (directory / "series.om").write_text(fleet_series(time.time()))
    subprocess.run(
        [str(BIN / "promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", "series.om", "data"],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=60,
    )
    (directory / "prometheus.yml").write_text("global:\n  evaluation_interval: 1m\n")
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "prometheus"),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "Prometheus did not start"
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _top(*args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "top", *args],
        cwd=REPO_ROOT,
        env=_environment(**environment),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _hosts(document: dict) -> dict[str, dict]:
    return {host["host"]: host for host in document["hosts"]}


# -- against the real Prometheus ------------------------------------------------------------------------------


def test_once_json_is_a_line_per_host_from_the_recorded_series_where_they_exist(central):
    result = _top("--prometheus-url", central, "--once", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"at", "prometheus_url", "hosts", "other_alerts", "waiting_for"}
    assert document["prometheus_url"] == central and document["waiting_for"] == []
    hosts = _hosts(document)
    assert list(hosts) == ["gpu-c", "gpu-b", "gpu-a", "gpu-d.example"]  # who needs a look first, worst first
    a, b, c, d = hosts["gpu-a"], hosts["gpu-b"], hosts["gpu-c"], hosts["gpu-d.example"]
    assert set(a) == {
        "host",
        "cluster",
        "model",
        "state",
        "requests_per_s",
        "ttft_p95_s",
        "kv_cache_usage_ratio",
        "gpu_utilization_ratio",
        "gpus",
        "alerts",
    }
    # gpu-a: the recorded series, not its raw ones (0.5 req/s, p95 0.375 s, KV 10 %)
    assert (a["cluster"], a["model"], a["state"]) == ("east", "tiny-llama", "healthy")
    assert a["requests_per_s"] == pytest.approx(2.0)
    assert a["ttft_p95_s"] == pytest.approx(0.12)
    assert a["kv_cache_usage_ratio"] == pytest.approx(0.42)
    assert (a["gpu_utilization_ratio"], a["gpus"]) == (pytest.approx(0.7), 2)
    assert a["alerts"] == [{"name": "VllmQueueLong", "severity": "warning"}]  # not the pending one
    # gpu-b: no recorded series, so the same expressions over the raw ones
    assert b["state"] == "stalled"
    assert b["requests_per_s"] == pytest.approx(0.5, rel=0.05)
    assert b["ttft_p95_s"] == pytest.approx(0.375, rel=0.05)
    assert b["kv_cache_usage_ratio"] == pytest.approx(0.1)
    assert b["alerts"] == [
        {"name": "VllmStalled", "severity": "critical"},
        {"name": "VllmNoProgress", "severity": "warning"},
    ]  # worst first, and never the Heartbeat
    # gpu-c: seen within the hour, silent for 20 minutes
    assert c["state"] == "no data" and c["requests_per_s"] is None and c["gpus"] == 0
    # gpu-d: scraped by the central Prometheus itself, named by its instance, no exporter
    assert (d["cluster"], d["state"], d["gpus"], d["gpu_utilization_ratio"]) == (None, "up", 0, None)
    assert d["requests_per_s"] == pytest.approx(0.5, rel=0.05)
    assert document["other_alerts"] == [{"name": "GpuUnderutilized", "severity": "info"}]


def test_once_text_has_a_line_per_host_in_columns(central):
    result = _top("--prometheus-url", central + "/", "--once")  # not a terminal: 100 columns, as the one-host view
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("serve-with-monitoring top ") and f"fleet {central}" in lines[0]
    assert lines[1].startswith("4 hosts  3 need a look  4 alerts firing (1 on no host: GpuUnderutilized)")
    assert re.match(r"host +state +req/s +TTFT p95 +KV +GPU alerts", lines[2])
    assert re.match(r"east/gpu-c +no data +- +- +- +- -$", lines[3])
    assert re.match(r"east/gpu-b +stalled +0\.5 +375ms +10% +0% 2 VllmStalled, VllmNoProgress$", lines[4])
    assert re.match(r"east/gpu-a +healthy +2\.0 +120ms +42% +70% 1 VllmQueueLong$", lines[5])
    assert re.match(r"gpu-d\.example +up +0\.5 +375ms +10% +- -", lines[6])
    assert all(len(line) < 100 for line in lines), lines
    assert lines[-1] == "q quits" and len(lines) == 8


@pytest.fixture
def terminal():
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing (scripts/setup.sh installs it)")
    name = f"swm-fleet-{time.monotonic_ns()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", "bash", "--norc"], check=True)
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def _screen(session: str, *options: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", *options, "-t", session], capture_output=True, text=True, check=True
    ).stdout


def _wait_for(session: str, text: str, *options: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while text not in (screen := _screen(session, *options)):
        assert time.monotonic() < deadline, f"never saw {text!r}:\n{screen}"
        time.sleep(0.1)
    return screen


@pytest.mark.parametrize("colour", ["colour", "NO_COLOR"])
def test_the_live_view_fits_80x24_follows_no_color_and_q_quits(central, terminal, colour):
    no_color = "NO_COLOR=1 " if colour == "NO_COLOR" else "env -u NO_COLOR "
    command = f"{no_color}TERM=xterm-256color {sys.executable} -m launcher top --prometheus-url {central}"
    subprocess.run(["tmux", "send-keys", "-t", terminal, f"cd {REPO_ROOT}; {command}; echo fleet-exited-$?", "Enter"])
    screen = _wait_for(terminal, "q quits", "-e")
    plain = _screen(terminal)
    assert "east/gpu-b" in plain and "gpu-d.example" in plain
    assert all(len(line) <= 80 for line in plain.splitlines()) and len(plain.splitlines()) <= 24
    codes = _colour_codes(screen.encode())
    assert (codes == []) == (colour == "NO_COLOR"), screen  # stalled in red, the healthy in green
    subprocess.run(["tmux", "send-keys", "-t", terminal, "q"], check=True)
    after = _wait_for(terminal, "fleet-exited-0")
    assert "gpu-d.example" not in after  # the alternate screen is gone


def test_a_short_terminal_shows_how_many_more_and_the_arrow_keys_scroll(central, terminal):
    subprocess.run(["tmux", "resize-window", "-t", terminal, "-x", "80", "-y", "7"], check=True)
    command = f"cd {REPO_ROOT}; {sys.executable} -m launcher top --prometheus-url {central} --interval 30"
    subprocess.run(["tmux", "send-keys", "-t", terminal, command, "Enter"], check=True)
    first = _wait_for(terminal, "+2 more")
    assert "east/gpu-c" in first and "gpu-d.example" not in first
    subprocess.run(["tmux", "send-keys", "-t", terminal, "Down", "Down"], check=True)
    scrolled = _wait_for(terminal, "2 above")  # redrawn at once, not at the next reading 30 s later
    assert "east/gpu-a" in scrolled and "gpu-d.example" in scrolled and "east/gpu-c" not in scrolled
    subprocess.run(["tmux", "send-keys", "-t", terminal, "q"], check=True)


def test_the_live_view_waits_for_a_prometheus_that_does_not_answer():
    url = f"http://127.0.0.1:{free_port()}"
    view = LiveView(["--prometheus-url", url, "--interval", "0.2"], _environment())  # a pseudo-terminal of 80x24
    try:
        view.wait_for(f"waiting for: cannot reach Prometheus at {url}".encode())
        view.read_for(0.5)
        assert view.process.poll() is None
        assert view.quit() == 0
    finally:
        view.close()


def test_keys_that_arrive_together_are_read_one_by_one():
    reading, writing = os.pipe()
    os.write(writing, b"\x1b[B\x1b[Bj\x1b[6~xq")
    try:
        assert list(command._keys_within(reading, 0.2)) == [b"\x1b[B", b"\x1b[B", b"j", b"\x1b[6~", b"x", b"q"]
    finally:
        os.close(reading)
        os.close(writing)


def test_a_url_where_nothing_listens_is_one_line_and_gives_up():
    url = f"http://127.0.0.1:{free_port()}"
    for output in ([], ["--json"]):
        result = _top("--prometheus-url", url, "--once", *output)
        assert result.returncode == EXIT_GAVE_UP and result.stdout == ""
        assert result.stderr.strip().splitlines() == [
            f"serve-with-monitoring top: error: cannot reach Prometheus at {url}: [Errno 111] Connection refused"
        ]


def test_a_url_that_is_no_prometheus_is_one_line_and_gives_up(central):
    result = _top("--prometheus-url", central + "/not-prometheus", "--once", "--json")
    assert result.returncode == EXIT_GAVE_UP and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"serve-with-monitoring top: error: {central}/not-prometheus is not a Prometheus:"
        " /api/v1/query answered HTTP 404"
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vllm-url", "http://127.0.0.1:8000"], "it takes no --vllm-url"),
        (["--window", "10"], "it takes no --window"),
        (["--state-dir", "/tmp"], "it takes no --state-dir"),
    ],
)
def test_the_one_host_options_are_refused_with_the_fleet(extra, message):
    result = _top("--prometheus-url", "http://127.0.0.1:9", "--once", *extra)
    assert result.returncode == EXIT_USAGE and message in result.stderr


def test_a_password_in_the_url_is_refused_unechoed():
    result = _top("--prometheus-url", "http://me:s3cret@127.0.0.1:9", "--once")
    assert result.returncode == EXIT_USAGE
    assert "without user:password@" in result.stderr and "s3cret" not in result.stderr


# -- without Prometheus: the snapshot and the screen ------------------------------------------------------------


def test_a_host_is_named_by_the_host_label_else_by_its_instance_else_by_its_hostname():
    assert host_of({"host": "gpu-a", "cluster": "east", "instance": "gpu-a:8000"}) == ("east", "gpu-a")
    assert host_of({"instance": "gpu-d.example:9402"}) == ("", "gpu-d.example")
    assert host_of({"instance": "[::1]:8000"}) == ("", "[::1]")
    assert host_of({"hostname": "node-7", "gpu": "0"}) == ("", "node-7")
    assert host_of({"alertname": "Heartbeat"}) is None


def _answers(hosts: int) -> dict[str, list]:
    answers = {key: [] for key in QUERIES}
    for number in range(hosts):
        labels = {"host": f"gpu-{number:02d}", "instance": f"gpu-{number:02d}:8000", "job": "vllm"}
        answers["seen"].append((labels, 1.0))
        answers["up"].append((labels, 1.0))
    if hosts > 7:
        answers["state"].append(({"host": "gpu-07", "child": "vllm", "state": "backoff"}, 1.0))
    return answers


def test_a_host_of_its_own_prometheus_owns_the_alerts_that_name_no_host():
    answers = _answers(1)
    answers["alerts"] = [({"alertname": "GpuUnderutilized", "severity": "info"}, 1.0)]
    snap = read_fleet("http://p", lambda expr: answers[next(k for k, v in QUERIES.items() if v == expr)])
    assert [alert.name for alert in snap.hosts[0].alerts] == ["GpuUnderutilized"] and snap.other_alerts == []


def _screen_of(snap: FleetSnapshot, width: int, height: int | None, offset: int = 0) -> list[str]:
    console = Console(width=width, height=height or 1000, no_color=True, record=True, file=io.StringIO())
    console.print(render_fleet(snap, width, height, offset))
    return console.export_text().splitlines()


def test_many_hosts_fit_80x24_with_how_many_more_and_scroll():
    snap = read_fleet("http://p", lambda expr: _answers(40)[next(k for k, v in QUERIES.items() if v == expr)])
    assert snap.hosts[0].host == "gpu-07"  # the one in backoff first
    rows = rows_that_fit(snap, 24)
    lines = _screen_of(snap, 80, 24)
    assert len(lines) == 24 and all(len(line) < 80 for line in lines)
    assert lines[-2].startswith(f"+{40 - rows} more") and lines[-1].startswith("q quits")
    scrolled = _screen_of(snap, 80, 24, offset=1000)  # clamped to the last page
    assert scrolled[-2].startswith(f"{40 - rows} above") and "gpu-39" in scrolled[-3]
    assert len(_screen_of(snap, 80, None)) == 40 + 4  # --once: every host


def test_a_failed_column_says_why_and_the_rest_still_shows():
    answers = _answers(2)

    def query(expr: str) -> list:
        if expr == QUERIES["gpu_utilization_percent"]:
            raise ValueError("bad_data: unknown function")
        return answers[next(k for k, v in QUERIES.items() if v == expr)]

    snap = read_fleet("http://p", query)
    assert len(snap.hosts) == 2 and snap.waiting_for == ["gpu_utilization_percent: bad_data: unknown function"]
    assert "waiting for: gpu_utilization_percent: bad_data" in "\n".join(_screen_of(snap, 80, 24))


def test_prometheus_query_reads_a_vector(central):
    [(labels, value)] = prometheus_query(central)('up{host="gpu-a"}')
    assert labels["instance"] == "gpu-a:8000" and value == 1.0

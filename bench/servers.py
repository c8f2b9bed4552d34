"""Starting and stopping the servers the benchmarks compare: bare `vllm serve` and `serve-with-monitoring`.

Both serve the same tiny model (built once into the bench cache) with the same vLLM flags, on vLLM's
CPU build here or whatever vLLM is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from launcher import defaults
from launcher.vllm_server.tiny_model import TINY_MODEL_NAME

BIN = Path(sys.executable).parent
VLLM = BIN / "vllm"
CACHE_HOME = Path(os.environ.get("SWM_BENCH_CACHE_HOME", Path(tempfile.gettempdir()) / "swm-bench-cache"))
QUIET_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_model_dir() -> Path:
    """The launcher's own tiny model, built once into the bench cache."""
    from launcher.vllm_server.tiny_model import default_model_dir
    from launcher.vllm_server.tiny_model_builder import ensure_tiny_model

    directory = default_model_dir(CACHE_HOME / "serve-with-monitoring")
    return ensure_tiny_model(directory, VLLM, {**os.environ, **QUIET_ENV})


def vllm_args(model: Path, port: int, max_model_len: int = 2048) -> list[str]:
    return [
        str(model),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--served-model-name",
        TINY_MODEL_NAME,
        "--max-model-len",
        str(max_model_len),
        *defaults.TINY_MODEL_SERVE_ARGS[2:],
        "--disable-access-log-for-endpoints",
        defaults.QUIET_ENDPOINTS,
    ]


def healthy(base_url: str) -> bool:
    return _get(base_url + "/health", 1.0) == 200


def complete_once(base_url: str, max_tokens: int = 2) -> None:
    """One small completion: the server has served a request (some metrics only appear after one)."""
    request = urllib.request.Request(
        base_url + "/v1/completions",
        data=json.dumps({"model": TINY_MODEL_NAME, "prompt": "x", "max_tokens": max_tokens}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=60).read()


def _get(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except (OSError, ValueError):
        return None


@dataclass
class Server:
    kind: str  # "bare" or "launcher"
    process: subprocess.Popen
    port: int
    workdir: Path
    started_at: float
    prometheus_port: int | None = None
    exporter_port: int | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 300.0) -> float:
        """Seconds from launch until /health answered 200 (polled every 50 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited: see {self.log_path}")
            if _get(self.base_url + "/health", 1.0) == 200:
                return time.monotonic() - self.started_at
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server not healthy within {timeout} s")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds_by_role(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the tree: the launcher itself, its helpers, vLLM."""
        used: dict[str, float] = {}
        for process in self.tree():
            try:
                role = _role(process, self.process.pid)
                times = process.cpu_times()
            except psutil.Error:
                continue
            used[role] = used.get(role, 0.0) + times.user + times.system
        return used

    def stop(self, timeout: float = 60.0) -> float:
        """Seconds from SIGTERM until every process of the tree is gone."""
        pids = [process.pid for process in self.tree()]
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.process.poll()
            alive = [pid for pid in pids if _alive(pid)]
            if not alive:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        for pid in pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return elapsed


def _role(process: psutil.Process, launcher_pid: int) -> str:
    if process.pid == launcher_pid:
        return "launcher"
    argv = process.cmdline()
    command = " ".join(argv)
    if "launcher.supervision.orphan_guard" in command:
        return "orphan_guard"
    if "launcher exporter" in command:
        return "exporter"
    if argv and Path(argv[0]).name == "prometheus":
        return "prometheus"
    if argv and Path(argv[0]).name in ("alertmanager", "prometheus-alertmanager"):
        return "alertmanager"
    return "vllm"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_bare(model: Path) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="swm-bench-bare-"))
    port = free_port()
    log_path = workdir / "vllm.log"
    env = {**os.environ, **QUIET_ENV, "TMPDIR": str(workdir), "VLLM_CACHE_ROOT": str(workdir / "cache")}
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(VLLM), "serve", *vllm_args(model, port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Server("bare", process, port, workdir, started, log_path=log_path)


def start_launcher(
    model: Path,
    scrape_interval: float | None = 5.0,
    grace: float = 30.0,
    extra_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Server:
    """serve-with-monitoring with its exporter and, unless scrape_interval is None, a native Prometheus."""
    workdir = Path(tempfile.mkdtemp(prefix="swm-bench-launcher-"))
    port, exporter_port, prometheus_port = free_port(), free_port(), free_port()
    stack = (
        ["--stack", "native", "--scrape-interval", f"{scrape_interval:g}"] if scrape_interval else ["--stack", "none"]
    )
    args = [
        *vllm_args(model, port),
        "--state-dir",
        str(workdir / "state"),
        "--exporter-port",
        str(exporter_port),
        "--prometheus-port",
        str(prometheus_port),
        "--grafana-port",
        str(free_port()),
        "--alertmanager-port",
        str(free_port()),
        "--grace-period",
        f"{grace:g}",
        *stack,
        *extra_args,
    ]
    log_path = workdir / "launcher.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(CACHE_HOME), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    # Through the interpreter rather than the console script, so that a PYTHONPATH checkout (--source)
    # is the one that runs.
    command = [sys.executable, "-m", "launcher", *args]
    with log_path.open("wb") as log:
        started = time.monotonic()
        # cwd: not this checkout, which `python -m` would put first on sys.path, ahead of PYTHONPATH.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return Server(
        "launcher",
        process,
        port,
        workdir,
        started,
        prometheus_port if scrape_interval else None,
        exporter_port,
        log_path,
    )


def seconds_until_prometheus_has_every_target(server: Server, timeout: float = 120.0) -> float:
    """From launch until Prometheus holds a sample from vllm, the exporter and itself."""
    url = f"http://127.0.0.1:{server.prometheus_port}/api/v1/query?query=count(up%3D%3D1)"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                result = json.loads(response.read())["data"]["result"]
            if result and float(result[0]["value"][1]) >= 3:
                return time.monotonic() - server.started_at
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError("Prometheus never held a sample from every target")

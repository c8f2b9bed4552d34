"""Runs the real `serve-with-monitoring` console script as a subprocess, the way a user does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

LAUNCHER_BIN = Path(sys.executable).parent / "serve-with-monitoring"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for servers the tests start, which cannot bind port 0 and report it back (vLLM, Prometheus ...).
# They come from below the kernel's ephemeral range, so no bind(0) or outgoing connection of any process
# can take one between our check and the server's bind, and no port is handed out twice in a session.
_PORT_RANGE_END = _ephemeral_start()
_PORT_RANGE_START = max(1024, _PORT_RANGE_END - 12000)
_next_port = _PORT_RANGE_START + (os.getpid() * 37) % (_PORT_RANGE_END - _PORT_RANGE_START)
_port_lock = threading.Lock()


def free_port() -> int:
    global _next_port
    with _port_lock:
        for _ in range(_PORT_RANGE_END - _PORT_RANGE_START):
            port = _next_port
            _next_port = _PORT_RANGE_START + (_next_port + 1 - _PORT_RANGE_START) % (
                _PORT_RANGE_END - _PORT_RANGE_START
            )
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def http_post_json(url: str, body: dict, timeout: float = 60.0) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class LauncherProcess:
    def __init__(
        self,
        args: list[str],
        workdir: Path,
        cache_home: Path,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.output_path = workdir / "launcher-output.log"
        port_args = [] if "--port" in args else ["--port", str(self.port)]
        self.exporter_port = free_port()
        if "--exporter-port" not in args and "--no-exporter" not in args:
            port_args += ["--exporter-port", str(self.exporter_port)]
        self.prometheus_port = free_port()
        self.grafana_port = free_port()
        self.alertmanager_port = free_port()
        if "--stack" not in args:
            port_args += ["--stack", "none"]  # tests that want Prometheus ask for it
        port_args += ["--prometheus-port", str(self.prometheus_port), "--grafana-port", str(self.grafana_port)]
        if "--alertmanager-port" not in args:
            port_args += ["--alertmanager-port", str(self.alertmanager_port)]
        self.args = [*args, *port_args, "--state-dir", str(self.state_dir)]
        self.env = {
            **os.environ,
            "HOME": str(self.home),  # anything written to ~ shows up here
            "XDG_CACHE_HOME": str(cache_home),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"

    def child_state(self, name: str) -> dict | None:
        try:
            return next(c for c in self.supervisor_state()["children"] if c["name"] == name)
        except (OSError, ValueError, StopIteration):
            return None

    def start(self) -> LauncherProcess:
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [str(LAUNCHER_BIN), *self.args], stdout=output, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
            )
        return self

    def run_to_exit(self, timeout: float) -> int:
        self.start()
        code = self.process.wait(timeout=timeout)
        self.assert_no_illegal_transitions()
        return code

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def launcher_lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if "serve-with-monitoring" in line]

    def vllm_state(self) -> str | None:
        child = self.child_state("vllm")
        return child["state"] if child else None

    def wait_healthy(self, timeout: float = 240.0) -> None:
        """Healthy in the launcher's own view, not only on /health: the tests then start from a known state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"launcher exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            if self.vllm_state() == "healthy":
                try:
                    if http_get(self.base_url + "/health", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.5)
        raise AssertionError(f"vLLM not healthy within {timeout} s:\n{self.output()[-4000:]}")

    def supervisor_state(self) -> dict:
        return json.loads((self.state_dir / "supervisor.json").read_text())

    def vllm_pid(self) -> int:
        return next(c for c in self.supervisor_state()["children"] if c["name"] == "vllm")["pid"]

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        code = self._end(timeout)
        self.assert_no_illegal_transitions()
        return code

    def _end(self, timeout: float) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for child in self.tree():
                child.kill()
            self.process.kill()
            return self.process.wait()

    def assert_no_illegal_transitions(self) -> None:
        """The launcher only logs an illegal state transition (launcher/states.py), so the tests must look."""
        illegal = [line for line in self.output().splitlines() if "illegal state transition" in line]
        assert not illegal, "\n".join(illegal)

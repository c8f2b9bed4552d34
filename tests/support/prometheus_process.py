"""A real Prometheus (.venv/bin/prometheus, Debian's 2.42) on a port and a storage directory of its own, stopped
with SIGTERM and started again on the same port and storage: one end of a remote-write link that goes away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.launcher_process import http_get
from tests.support.prometheus_api import PrometheusApi

PROMETHEUS = Path(sys.executable).parent / "prometheus"


class PrometheusProcess:
    def __init__(self, name: str, directory: Path, port: int, config: Path, *flags: str) -> None:
        self.name, self.port = name, port
        self.command = [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / (name + '-data')}",
            f"--web.listen-address=127.0.0.1:{port}",
            *flags,
        ]
        self.log = directory / f"{name}.log"
        self.url = f"http://127.0.0.1:{port}"
        self.api = PrometheusApi(self.url)
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} never started"
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Returns once /-/ready answers 200: storage (WAL included) loaded, the remote-write receiver on."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if http_get(f"{self.url}/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a sender flushing to a receiver that is gone waits a minute
            self.process.kill()
            self.process.wait(timeout=10)

"""`serve-with-monitoring health`, the image's HEALTHCHECK, run as the console script is: it finds vLLM's URL
in the launcher's status file (written here by the launcher's own writer) and exits 0 only on a 200 from
GET /health, with one line either way."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from launcher.state_layout import StateLayout
from launcher.states import SupervisorStatus
from launcher.supervision.status_file import write_status
from tests.support.launcher_process import REPO_ROOT, free_port


def _health(state_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "health", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _launcher_state(state_dir: Path, vllm_url: str, launcher_pid: int | None = None) -> None:
    """The test process plays the launcher that wrote the state, unless `launcher_pid` names another."""
    layout = StateLayout(state_dir)
    layout.ensure()
    status = SupervisorStatus(
        launcher_pid=os.getpid() if launcher_pid is None else launcher_pid,
        updated_at=time.time(),
        info={"vllm_url": vllm_url},
    )
    write_status(layout.supervisor_state, status)


@contextmanager
def _health_answer_server(status: int, requests: int = 1) -> Iterator[str]:
    """NOT a vLLM stand-in: a loopback HTTP server whose GET /health answers `status`, so that only the
    command's decision on the HTTP answer is tested. It records the paths asked for."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(status if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    assert paths == ["/health"] * requests  # one request, to vLLM's health path


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_no_launcher_state_is_unhealthy_in_one_line(tmp_path):
    result = _health(tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"unhealthy: no launcher state in {tmp_path}"
    assert result.stdout == ""


def test_a_url_where_nothing_listens_is_unhealthy_with_no_answer(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # free_port() binds and lets go: nothing listens there
    _launcher_state(tmp_path, url)
    result = _health(tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"unhealthy: GET {url}/health: no answer"


def test_a_200_from_health_is_healthy(tmp_path):
    with _health_answer_server(200) as url:
        _launcher_state(tmp_path, url)
        result = _health(tmp_path)
    assert result.returncode == 0, result.stderr
    assert _one_line(result.stdout) == f"healthy: GET {url}/health: 200"
    assert result.stderr == ""


@pytest.mark.parametrize("status", [500, 503, 404])
def test_any_other_answer_from_health_is_unhealthy(tmp_path, status):
    with _health_answer_server(status) as url:
        _launcher_state(tmp_path, url)
        result = _health(tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"unhealthy: GET {url}/health: {status}"


def test_the_state_of_a_launcher_that_is_gone_is_unhealthy_whatever_answers_its_port(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with _health_answer_server(200, requests=0) as url:
        _launcher_state(tmp_path, url, launcher_pid=gone.pid)
        result = _health(tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"unhealthy: the launcher (pid {gone.pid}) that wrote {tmp_path} is not running"

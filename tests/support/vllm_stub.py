"""A stand-in for vLLM's HTTP API on a free local port: /metrics answers a real vLLM page
(tests/fixtures/vllm_metrics_0.32.txt, which a test may change), /version {"version": "0.32.0"}, and
every request is counted by path."""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGE = (Path(__file__).resolve().parents[1] / "fixtures" / "vllm_metrics_0.32.txt").read_text()
VERSION = "0.32.0"


class VllmStub:
    def __init__(self) -> None:
        self.page = PAGE
        self.version_failures = 0  # the next this many /version requests answer 500, as a vLLM still starting
        self.requests: collections.Counter[str] = collections.Counter()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests[self.path] += 1
                status, body = stub.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, bytes]:
        if path == "/metrics":
            return 200, self.page.encode()
        if path == "/version":
            if self.version_failures > 0:
                self.version_failures -= 1
                return 500, b"starting"
            return 200, json.dumps({"version": VERSION}).encode()
        return 404, b""

    def restart(self, started_at: float) -> None:
        """The page of a vLLM started at `started_at` (Unix time)."""
        self.page = (
            "\n".join(
                f"process_start_time_seconds {started_at}" if line.startswith("process_start_time_seconds ") else line
                for line in PAGE.splitlines()
            )
            + "\n"
        )

    def __enter__(self) -> VllmStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

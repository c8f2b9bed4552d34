"""A webhook receiver the test owns, on loopback: it plays the part of a pager, a chat relay or a dead
man's switch, and records every notification Alertmanager POSTs to it."""

from __future__ import annotations

import http.server
import json
import threading
import time


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict]] = []  # (monotonic time, path, body)
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    document = json.loads(body)
                except ValueError:
                    document = {"unparsed": body.decode(errors="replace")}
                with receiver._lock:
                    receiver.received.append((time.monotonic(), self.path, document))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def alerts(self, path: str, since: float = 0.0) -> list[tuple[str, dict]]:
        """(status, alert) for every alert of every notification POSTed to `path` after `since` (monotonic)."""
        with self._lock:
            bodies = [body for when, where, body in self.received if where == path and when >= since]
        return [(alert.get("status", ""), alert) for body in bodies for alert in body.get("alerts", [])]

    def wait_for(self, path: str, alertname: str, timeout: float = 120.0, since: float = 0.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status, alert in self.alerts(path, since):
                if alert.get("labels", {}).get("alertname") == alertname and status == "firing":
                    return alert
            time.sleep(0.5)
        raise AssertionError(f"{alertname} never reached {path}; got {[a for _, a in self.alerts(path)]}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

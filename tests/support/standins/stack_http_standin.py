"""STAND-IN for the Prometheus, Alertmanager and Grafana containers of the docker stack (no Docker engine
here). Each port serves only its own program's health path, as the real one would: Prometheus' and
Alertmanager's /-/ready, Grafana's /api/health; any other path is a 404, so a probe sent to the wrong port
fails. Like containers, they come up late and one after another: Prometheus and Alertmanager answer 503
"Service Unavailable" to /-/ready until they are ready, as theirs do while loading; Grafana's port is closed
until its server is up. Every request is recorded (one JSON line each in DIR/probes.jsonl).

    python -m tests.support.standins.stack_http_standin DIR PROMETHEUS_PORT ALERTMANAGER_PORT GRAFANA_PORT
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
from pathlib import Path

# Seconds after `up` at which each is ready: late enough that a launcher which does not wait for all three
# is caught, short enough for a unit test. SWM_STANDIN_STACK_READY_S overrides them ("p,a,g").
READY_AFTER_S = (0.6, 1.2, 1.8)
PROGRAMS = ("prometheus", "alertmanager", "grafana")
HEALTH_PATHS = {"prometheus": "/-/ready", "alertmanager": "/-/ready", "grafana": "/api/health"}


def handler_for(program: str, ready_at: float, record: Path) -> type[http.server.BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ready = time.monotonic() >= ready_at
            if self.path != HEALTH_PATHS[program]:
                status, body = 404, b"404 page not found\n"
            elif not ready:
                status, body = 503, b"Service Unavailable"
            else:
                status, body = 200, (b'{"database": "ok"}' if program == "grafana" else b"Ready.\n")
            with lock, record.open("a") as handle:
                handle.write(json.dumps({"program": program, "path": self.path, "status": status}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    directory = Path(sys.argv[1])
    ports = [int(port) for port in sys.argv[2:5]]
    delays = os.environ.get("SWM_STANDIN_STACK_READY_S")
    ready_after = tuple(float(value) for value in delays.split(",")) if delays else READY_AFTER_S
    started = time.monotonic()
    record = directory / "probes.jsonl"
    servers = []
    for program, port, delay in zip(PROGRAMS, ports, ready_after, strict=True):
        if program == "grafana":
            continue  # its port opens only once it is up
        handler = handler_for(program, started + delay, record)
        servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), handler))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    time.sleep(max(0.0, started + ready_after[2] - time.monotonic()))
    http.server.ThreadingHTTPServer(("127.0.0.1", ports[2]), handler_for("grafana", 0.0, record)).serve_forever()


if __name__ == "__main__":
    main()

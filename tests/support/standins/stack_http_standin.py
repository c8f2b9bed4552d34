"""STAND-IN for the Prometheus, Alertmanager and Grafana containers of the docker stack (no Docker engine
here): answers their /-/ready and Grafana's /api/health on the given ports, and nothing else."""

from __future__ import annotations

import http.server
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path in ("/-/ready", "/api/health")
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b'{"database": "ok"}' if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler) for port in sys.argv[1:]]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()

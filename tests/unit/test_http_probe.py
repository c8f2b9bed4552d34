"""The launcher's probe GETs against real local servers: plain HTTP and TLS with a certificate made here."""

import http.server
import socket
import ssl
import threading

import pytest

from launcher.http_probe import http_get_text, http_status
from tests.support.tls_files import self_signed


class _Handler(http.server.BaseHTTPRequestHandler):
    seen_authorization: list[str | None] = []

    def do_GET(self) -> None:
        _Handler.seen_authorization.append(self.headers.get("Authorization"))
        code = int(self.path.strip("/").split("?")[0] or 200)
        body = f"answer {code}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_status_and_body(server):
    base = f"http://127.0.0.1:{server.server_address[1]}"
    assert http_status(base + "/200", 2) == 200
    assert http_status(base + "/503", 2) == 503
    assert http_get_text(base + "/200?x=1", 2) == "answer 200"
    assert http_get_text(base + "/500", 2) is None  # only a 200 has a body worth reading


def test_authorization_is_sent(server):
    _Handler.seen_authorization.clear()
    http_status(f"http://127.0.0.1:{server.server_address[1]}/200", 2, authorization="Basic abc")
    assert _Handler.seen_authorization == ["Basic abc"]


def test_nothing_listening_is_none():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]  # bound, not listening: refused
        assert http_status(f"http://127.0.0.1:{port}/", 1) is None
        assert http_get_text(f"http://127.0.0.1:{port}/", 1) is None
    assert http_status("ftp://127.0.0.1/", 1) is None


def test_a_silent_server_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts into the backlog and never answers
        assert http_status(f"http://127.0.0.1:{listener.getsockname()[1]}/", 0.3) is None


def test_tls_with_a_self_signed_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert http_status(f"https://127.0.0.1:{httpd.server_address[1]}/200", 2) == 200
    finally:
        httpd.shutdown()
        httpd.server_close()

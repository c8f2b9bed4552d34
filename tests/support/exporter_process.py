"""The exporter alone (`python -m launcher exporter`), from this checkout's code, with a web config: started,
waited for, and requests made to it over plain sockets, so that a test sees exactly what a client sees."""

from __future__ import annotations

import base64
import contextlib
import http.client
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.launcher_process import free_port

REPO = Path(__file__).resolve().parents[2]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def unverified_client(**settings: object) -> ssl.SSLContext:
    """A TLS client that takes any certificate; settings: maximum_version, minimum_version, ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if "ciphers" in settings:
        context.set_ciphers(f"{settings['ciphers']}:@SECLEVEL=0")  # offer them even where OpenSSL would not
    for name in ("minimum_version", "maximum_version"):
        if name in settings:
            setattr(context, name, settings[name])
    return context


def request(
    port: int,
    path: str,
    method: str = "GET",
    authorization: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers in lower case, body); raises OSError (ssl.SSLError included) when no answer comes."""
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _soft_file_limit(limit: int | None):
    if limit is None:
        return None

    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return apply


@contextlib.contextmanager
def running_exporter(
    web_config: Path, context: ssl.SSLContext | None = None, file_limit: int | None = None
) -> Iterator[int]:
    """The exporter's port, once /healthz answers; the exporter is stopped on the way out."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(port), "--web-config-file", str(web_config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_soft_file_limit(file_limit),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "/healthz", context=context, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise AssertionError(f"the exporter exited: {process.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "the exporter did not answer /healthz within 30 s"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def hanging_connection(port: int, sent: bytes = b"GET /metrics HTTP/1.1\r\nHost: x\r\n") -> socket.socket:
    """A connection that starts a request and never finishes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(sent)
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True if the server closes `sock` (EOF or reset) within `within_s`."""
    sock.settimeout(within_s)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False

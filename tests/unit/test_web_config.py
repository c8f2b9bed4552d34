"""The exporter's web config (exporter-toolkit format): TLS and bcrypt basic auth, served for real by the
exporter over real sockets. Certificates are made here with openssl."""

import base64
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
import yaml

from observability.exporter.access import BasicAuth
from observability.exporter.web_config import WebConfigError, load_web_config
from tests.support.launcher_process import free_port
from tests.support.tls_files import bcrypt_hash, self_signed

LAUNCHER_BIN = Path(sys.executable).parent / "serve-with-monitoring"
VALID_TAIL = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()[7:]  # salt and digest, 53 characters
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'",
    "X-Frame-Options": "sameorigin",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "Strict-Transport-Security": "max-age=31536000",
}
# Every key exporter-toolkit's web-configuration.md defines.
FORMAT_KEYS = {
    "tls_server_config",
    *(
        f"tls_server_config.{key}"
        for key in (
            "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
            "client_allowed_sans", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
            "curve_preferences",
        )
    ),
    "http_server_config",
    "http_server_config.http2",
    "http_server_config.headers",
    "basic_auth_users",
    "rate_limit",
    "rate_limit.interval",
    "rate_limit.burst",
}  # fmt: skip


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


def write(tmp_path, text):
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_a_full_config_is_read(tmp_path, tls):
    cert, key = tls
    hashed = bcrypt_hash("s3cret")
    config = load_web_config(
        write(
            tmp_path,
            f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  alice: '{hashed}'\n",
        )
    )
    assert config.tls and config.auth and config.scheme == "https"
    assert config.users == {"alice": hashed.encode()}


def test_relative_paths_are_relative_to_the_file(tmp_path, tls):
    cert, key = tls
    (tmp_path / "c.crt").write_bytes(cert.read_bytes())
    (tmp_path / "k.key").write_bytes(key.read_bytes())
    config = load_web_config(write(tmp_path, "tls_server_config:\n  cert_file: c.crt\n  key_file: k.key\n"))
    assert config.cert_file == tmp_path / "c.crt"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "tls_server_config:\n  cert_file: /nope.crt\n  key_file: KEY\n",
            "tls_server_config.cert_file: /nope.crt does not exist",
        ),
        ("tls_server_config:\n  cert_file: CERT\n", "tls_server_config.key_file: missing"),
        ("tls_server_config:\n  cert_file: CERT\n  key_file: UNREADABLE\n", "tls_server_config.key_file: cannot read"),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: CERT\n",
            "tls_server_config: cert_file and key_file are not a matching pair",
        ),
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice: not a bcrypt hash"),
        ("basic_auth_users:\n  alice: '$1$md5$notbcrypt'\n", "basic_auth_users.alice: not a bcrypt hash"),
        ("basic_auth: {}\n", "basic_auth: unknown key"),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  client_auth_type: Sometimes\n",
            "client_auth_type: expected one of",
        ),
        ("tls_server_config: [\n", "is not valid YAML at line"),
        (
            f"basic_auth_users:\n  alice: '$2b$99${VALID_TAIL}'\n",
            "basic_auth_users.alice: bcrypt cost '99' is outside 4-31",
        ),
        (f"basic_auth_users:\n  alice: '$2b$03${VALID_TAIL}'\n", "basic_auth_users.alice: bcrypt cost '03' is outside"),
        ("basic_auth_users:\n  alice: '$2b$12$" + "!" * 53 + "'\n", "alice: not a bcrypt hash: its salt and digest"),
        ("tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  min_version: TLS14\n", "min_version: expected one"),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  min_version: TLS13\n  max_version: TLS12\n",
            "tls_server_config.min_version: TLS13 is above max_version TLS12",
        ),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
            "tls_server_config.cipher_suites: 'TLS_RSA_WITH_RC4_128_SHA' is not one of Go's names",
        ),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  client_allowed_sans: [a.example]\n",
            "tls_server_config.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: CERT\n  cert: CERT\n  key_file: KEY\n",
            "tls_server_config.cert: give cert or cert_file, not both",
        ),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options: expected one of deny"),
        ("http_server_config:\n  headers:\n    X-Powered-By: me\n", "headers.X-Powered-By: unknown key"),
        ("http_server_config:\n  http2: maybe\n", "http_server_config.http2: expected true or false"),
        (
            "tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  client_ca_file: CERT\n",
            "tls_server_config.client_auth_type: a client CA is given but no client is asked for a certificate",
        ),
        ("tls_server_config:\n  cert_file: CERT\n  key_file: KEY\n  min_version: [TLS12]\n", "min_version: expected"),
        ("rate_limit:\n  interval: fast\n  burst: 1\n", "rate_limit.interval: expected a duration"),
        ("rate_limit:\n  interval: 1s\n", "rate_limit.burst: must be 1 or more"),
    ],
)
def test_each_bad_input_is_one_line_naming_the_key(tmp_path, tls, body, message):
    cert, key = tls
    unreadable = tmp_path / "unreadable.key"
    unreadable.write_text("x")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: a directory cannot be read as a file
        unreadable.unlink()
        unreadable.mkdir()
    body = body.replace("UNREADABLE", str(unreadable)).replace("CERT", str(cert)).replace("KEY", str(key))
    with pytest.raises(WebConfigError) as raised:
        load_web_config(write(tmp_path, body))
    text = str(raised.value)
    assert message in text and "\n" not in text, text


def test_every_key_of_the_format_is_read_and_written_back(tmp_path, tls):
    """exporter-toolkit's docs/web-configuration.md, key by key: none is refused as unknown or dropped."""
    cert, key = tls
    pem_cert, pem_key = cert.read_text(), key.read_text()
    documents = [
        {
            "tls_server_config": {
                "cert_file": str(cert),
                "key_file": str(key),
                "client_auth_type": "VerifyClientCertIfGiven",
                "client_ca_file": str(cert),
                "min_version": "TLS12",
                "max_version": "TLS13",
                "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
                "prefer_server_cipher_suites": False,
                "curve_preferences": ["X25519", "CurveP256"],
            },
            "http_server_config": {
                "http2": True,
                "headers": dict(_HEADERS),
            },
            "basic_auth_users": {"alice": bcrypt_hash("a")},
            "rate_limit": {"interval": "1m30.5s", "burst": 10},
        },
        {
            "tls_server_config": {
                "cert": pem_cert,
                "key": pem_key,
                "client_ca": pem_cert,
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_allowed_sans": ["scraper.example", "10.0.0.1"],
            },
        },
    ]
    seen = set()
    for document in documents:
        path = tmp_path / "web.yml"
        path.write_text(yaml.safe_dump(document))
        config = load_web_config(path)
        assert config.document() == document
        for section, value in document.items():
            seen.add(section)
            if section != "basic_auth_users":  # its keys are user names
                seen |= {f"{section}.{key}" for key in value}
    assert seen == FORMAT_KEYS
    assert load_web_config(path).client_allowed_sans == ("scraper.example", "10.0.0.1")


def test_the_exporter_refuses_an_impossible_bcrypt_cost_in_one_line_and_starts_nothing(tmp_path):
    config = write(tmp_path, f"basic_auth_users:\n  alice: '$2b$99${VALID_TAIL}'\n")
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(free_port()), "--web-config-file", str(config)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "basic_auth_users.alice: bcrypt cost '99' is outside 4-31" in lines[0]


def test_the_exporter_refuses_a_bad_web_config_in_one_line_and_starts_nothing(tmp_path):
    config = write(tmp_path, "basic_auth_users:\n  alice: hunter2\n")
    port = free_port()
    result = subprocess.run(
        [str(LAUNCHER_BIN), "exporter", "--port", str(port), "--web-config-file", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"serve-with-monitoring: error: web config {config}: basic_auth_users.alice: "
        "not a bcrypt hash (make one with `htpasswd -nBC 12 ''`)"
    ]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing listens


def test_basic_auth_checks_against_bcrypt_and_remembers_good_credentials(monkeypatch):
    auth = BasicAuth({"alice": bcrypt_hash("s3cret").encode()})
    checks = []
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *args: checks.append(1) or real_checkpw(*args))

    def header(user, password):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert auth.allows(header("alice", "s3cret"))
    assert not auth.allows(header("alice", "wrong"))
    assert not auth.allows(header("mallory", "s3cret"))
    assert not auth.allows("Bearer s3cret") and not auth.allows("") and not auth.allows("Basic !!!")
    assert len(checks) == 3  # an unknown user is checked against a dummy hash: as slow as a wrong password
    for _ in range(100):
        assert auth.allows(header("alice", "s3cret"))
    assert len(checks) == 3  # remembered: no bcrypt per scrape


def _get(url, context=None, authorization=None):
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_exporter_serves_tls_and_basic_auth(tmp_path, tls):
    cert, key = tls
    config = write(
        tmp_path,
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prom: '{bcrypt_hash('pw')}'\n",
    )
    port = free_port()
    process = subprocess.Popen(
        [str(LAUNCHER_BIN), "exporter", "--port", str(port), "--web-config-file", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    verified = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(base + "/healthz", verified) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        good = "Basic " + base64.b64encode(b"prom:pw").decode()
        bad = "Basic " + base64.b64encode(b"prom:nope").decode()
        with pytest.raises(OSError):  # plain HTTP to a TLS port: no HTTP answer
            _get(f"http://127.0.0.1:{port}/metrics")
        assert _get(base + "/metrics", verified) == 401
        assert _get(base + "/metrics", verified, bad) == 401
        assert _get(base + "/sd", verified) == 401
        assert _get(base + "/metrics", verified, good) == 200
        assert _get(base + "/sd", verified, good) == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_web_config_that_never_ends_is_refused_without_reading_it_all():
    with pytest.raises(WebConfigError, match="larger than 1024 KiB"):
        load_web_config(Path("/dev/zero"))

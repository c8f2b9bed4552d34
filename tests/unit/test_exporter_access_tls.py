"""Every key of a web config is applied by the exporter or refused in one line: TLS versions, cipher suites,
client certificates and their names, response headers, the rate limit. Real exporter processes, real
handshakes."""

import ssl
import subprocess
import sys

import pytest

from observability.exporter.tls_names import TLS12_CIPHER_SUITES
from tests.support.client_certificates import certificate_authority, client_certificate
from tests.support.exporter_process import REPO, basic, request, running_exporter, unverified_client
from tests.support.launcher_process import free_port
from tests.support.tls_files import bcrypt_hash, self_signed


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


def web_config(tmp_path, tls, extra_tls="", rest=""):
    cert, key = tls
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n{extra_tls}{rest}")
    return path


def handshake(port, **client):
    """True when a client with these settings is answered, False when the exporter refuses its handshake."""
    try:
        return request(port, "/healthz", context=unverified_client(**client))[0] == 200
    except ssl.SSLError:
        return False


def test_min_version_tls13_refuses_a_tls12_handshake(tmp_path, tls):
    with running_exporter(web_config(tmp_path, tls, "  min_version: TLS13\n"), unverified_client()) as port:
        assert not handshake(port, maximum_version=ssl.TLSVersion.TLSv1_2)
        assert handshake(port, minimum_version=ssl.TLSVersion.TLSv1_3)


def test_max_version_and_cipher_suites_are_what_a_tls12_client_gets(tmp_path, tls):
    config = web_config(
        tmp_path,
        tls,
        "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"
        "  prefer_server_cipher_suites: false\n",
    )
    with running_exporter(config, unverified_client(maximum_version=ssl.TLSVersion.TLSv1_2)) as port:
        assert not handshake(port, minimum_version=ssl.TLSVersion.TLSv1_3)
        assert not handshake(port, maximum_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
        assert handshake(port, maximum_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-RSA-AES256-GCM-SHA384")


def test_by_default_tls12_offers_no_cbc_with_sha1_and_security_headers_are_sent(tmp_path, tls):
    rest = (
        "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
        "    Strict-Transport-Security: max-age=31536000\n"
        f"basic_auth_users:\n  prom: '{bcrypt_hash('pw')}'\n"
    )
    with running_exporter(web_config(tmp_path, tls, rest=rest), unverified_client()) as port:
        tls12 = ssl.TLSVersion.TLSv1_2
        for suite in ("ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "AES128-SHA", "AES128-GCM-SHA256"):
            assert not handshake(port, maximum_version=tls12, ciphers=suite), suite
        assert handshake(port, maximum_version=tls12, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
        for path, authorization in (("/healthz", None), ("/metrics", basic("prom", "pw")), ("/metrics", None)):
            _, headers, _ = request(port, path, authorization=authorization, context=unverified_client())
            assert headers["x-frame-options"] == "deny", path
            assert headers["strict-transport-security"] == "max-age=31536000", path


def test_client_allowed_sans_lets_in_only_the_names_it_lists(tmp_path, tls):
    authority = certificate_authority(tmp_path)
    allowed = client_certificate(tmp_path, authority, "scraper", "DNS:scraper.example")
    other = client_certificate(tmp_path, authority, "stranger", "DNS:stranger.example")
    by_ip = client_certificate(tmp_path, authority, "by-ip", "IP:2001:db8::1")
    config = web_config(
        tmp_path,
        tls,
        f"  client_ca_file: {authority[0]}\n  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_allowed_sans: [scraper.example, '2001:db8:0::1']\n",
    )

    def client(certificate):
        context = unverified_client()
        if certificate:
            context.load_cert_chain(*certificate)
        return context

    with running_exporter(config, client(allowed)) as port:
        assert request(port, "/healthz", context=client(allowed))[0] == 200
        assert request(port, "/healthz", context=client(by_ip))[0] == 200
        for refused in (other, None):
            with pytest.raises(OSError):  # a handshake refused, or a connection closed unanswered
                request(port, "/healthz", context=client(refused))


def test_rate_limit_answers_429_past_the_burst(tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("rate_limit:\n  interval: 1h\n  burst: 40\n")
    with running_exporter(config) as port:  # its /healthz polls take some of the burst
        statuses = [request(port, "/healthz")[0] for _ in range(41)]
        assert statuses[-1] == 429 and statuses[0] == 200


@pytest.mark.parametrize(
    ("tls_lines", "rest", "message"),
    [
        ("  curve_preferences: [X25519]\n", "", "tls_server_config.curve_preferences: not supported by this exporter"),
        ("", "http_server_config:\n  http2: true\n", "http_server_config.http2: the exporter speaks HTTP/1.1 only"),
        (
            "  client_auth_type: RequireAnyClientCert\n",
            "",
            "tls_server_config.client_auth_type: RequireAnyClientCert without client_ca_file would turn every client",
        ),
    ],
)
def test_what_the_exporter_cannot_apply_is_refused_in_one_line_naming_the_key(tmp_path, tls, tls_lines, rest, message):
    config = web_config(tmp_path, tls, tls_lines, rest)
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(free_port()), "--web-config-file", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]


def test_an_inline_certificate_is_refused_by_the_exporter(tmp_path, tls):
    cert, key = tls
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert: |\n"
        + "".join(f"    {line}\n" for line in cert.read_text().splitlines())
        + f"  key_file: {key}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(free_port()), "--web-config-file", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "tls_server_config.cert: not supported by this exporter" in result.stderr


def test_go_cipher_suite_names_map_to_the_openssl_suites_of_the_same_standard_name():
    listing = subprocess.run(
        ["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"], capture_output=True, text=True, check=True
    ).stdout
    openssl_name = {line.split()[0]: line.split()[2] for line in listing.splitlines() if " - " in line}
    for go_name, expected in TLS12_CIPHER_SUITES.items():
        assert openssl_name[go_name] == expected, go_name

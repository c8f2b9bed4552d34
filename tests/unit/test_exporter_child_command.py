"""The launcher's options for its exporter, read back by the exporter's own argument parser: what the
launcher writes on the exporter's command line is what the exporter runs with."""

from __future__ import annotations

from launcher.commands.exporter import parse_arguments
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.exporter_child import exporter_child
from launcher.stack.secured_endpoint import exporter_exposure_warning
from launcher.state_layout import StateLayout


def exporter_arguments(tmp_path, *options: str):
    settings = merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state"), *options]))
    child = exporter_child(settings, StateLayout(settings.state_dir))
    assert list(child.command[1:4]) == ["-m", "launcher", "exporter"]
    return settings, child, parse_arguments(list(child.command[4:]))


def test_collect_interval_host_and_port_reach_the_exporter(tmp_path):
    settings, child, arguments = exporter_arguments(
        tmp_path, "--collect-interval", "7.5", "--exporter-host", "0.0.0.0", "--exporter-port", "9555"
    )
    assert arguments.collect_interval == 7.5
    assert arguments.host == "0.0.0.0"
    assert arguments.port == 9555
    assert arguments.state_dir == settings.state_dir
    # Bound to every address, it is still probed where a client on this host dials it.
    assert child.health_urls == ("http://127.0.0.1:9555/healthz",)


def test_the_defaults_bind_loopback(tmp_path):
    _, child, arguments = exporter_arguments(tmp_path)
    assert arguments.host == "127.0.0.1"
    assert child.health_urls[0].startswith("http://127.0.0.1:")


def test_the_exposure_warning_names_the_address_and_the_way_out():
    warning = exporter_exposure_warning("0.0.0.0", 9402)
    assert "0.0.0.0:9402" in warning and "--exporter-web-config" in warning

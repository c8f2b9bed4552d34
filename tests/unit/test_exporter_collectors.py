"""Collectors by name, node_exporter style: `exporter --collector.NAME` / `--no-collector.NAME`, and the
launcher's `--no-exporter-collector NAME` / `--exporter-collector NAME` that reach them. No GPU: the NVML
HARDWARE STAND-IN (tests/support/standins) stands for two."""

import logging
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from launcher.commands.exporter import parser
from launcher.commands.main import main
from launcher.errors import EXIT_USAGE, UsageError
from launcher.settings.command_line import help_text, parse_command_line
from launcher.settings.options import OPTIONS
from launcher.settings.settings import load_settings, merge_settings
from launcher.stack.exporter_child import exporter_child
from launcher.state_layout import StateLayout
from launcher.vllm_server.capabilities import parse_help
from observability.exporter import main as exporter_main
from observability.exporter.build import FACTORIES, Sources, build_registry
from observability.exporter.collector_catalog import CATALOG, NAMES, enabled_collectors
from observability.exporter.exposition import Exposition
from observability.exporter.main import ExporterOptions
from observability.exporter.nvml_session import NvmlSession
from observability.exporter.vllm_tree import SupervisorView
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus
from tests.unit.conftest import HELP_0_32

EXPORTER_DOC = HELP_0_32.parents[2] / "docs" / "exporter.md"


def collect(registry) -> dict[str, list]:
    """Every collection once, then sample name -> [(labels, value)] from the text a scrape would get."""
    for collection in registry.collections:
        collection.collect_once()
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(Exposition(registry).body("", False)[0].decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def collector_rows(found: dict, family: str) -> set[str]:
    return {labels["collector"] for labels, _ in found.get(family, [])}


# -- the catalog ---------------------------------------------------------------------------------------


def test_the_catalog_and_the_factories_agree_and_each_collector_carries_its_name(tmp_path):
    assert list(FACTORIES) == list(NAMES)
    sources = Sources(NvmlSession(), SupervisorView(None), "h", tmp_path)  # nothing is called yet
    assert [FACTORIES[name](sources).name for name in NAMES] == list(NAMES)


def test_every_collector_is_on_by_default():
    assert all(entry.enabled_by_default for entry in CATALOG)
    assert enabled_collectors() == NAMES


def test_the_catalog_imports_nothing_heavy_so_the_options_table_can_read_it():
    code = (
        "import sys, launcher.settings.options\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pynvml', 'prometheus_client', 'psutil'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_docs_list_every_collector():
    section = EXPORTER_DOC.read_text().split("## Collectors", 1)[1].split("\n## ", 1)[0]
    assert [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")] == list(NAMES)


# -- a disabled collector is not built ---------------------------------------------------------------------


def test_without_xid_every_xid_family_and_its_collector_rows_are_absent_and_the_others_stay(tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus())
    collectors = enabled_collectors([("xid", False)])
    registry = build_registry("gpu-host-1", 60.0, None, tmp_path, standin.library(), collectors=collectors)
    try:
        collect(registry)  # GPM needs two samples
        found = collect(registry)
    finally:
        registry.stop()
        standin.uninstall()
    names = set(found)
    assert not {name for name in names if name.startswith("swm_gpu_xid")}
    assert "DCGM_FI_DEV_XID_ERRORS" not in names
    expected = set(NAMES) - {"xid"}
    for family in (
        "swm_exporter_collector_up",
        "swm_exporter_collector_duration_seconds",
        "swm_exporter_collector_errors_total",
        "swm_exporter_collector_last_success_timestamp_seconds",
    ):
        assert collector_rows(found, family) == expected, family
    assert {"DCGM_FI_DEV_FB_USED", "DCGM_FI_PROF_SM_ACTIVE", "swm_nvml_up", "swm_host_cpus"} <= names
    assert "swm_supervisor_up" in names


def test_with_xid_the_same_families_are_there_so_the_test_above_means_something(tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus())
    registry = build_registry("gpu-host-1", 60.0, None, tmp_path, standin.library())
    try:
        registry.start_sources()
        deadline = time.monotonic() + 10
        while standin.registered != {0, 1} and time.monotonic() < deadline:
            time.sleep(0.05)
        found = collect(registry)
    finally:
        registry.stop()
        standin.uninstall()
    assert "swm_gpu_xid_events_total" in found
    assert "xid" in collector_rows(found, "swm_exporter_collector_up")


def test_a_disabled_xid_starts_no_event_thread_and_registers_for_no_event(tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus())
    collectors = enabled_collectors([("xid", False)])
    registry = build_registry("gpu-host-1", 0.1, None, tmp_path, standin.library(), collectors=collectors)
    before = set(threading.enumerate())  # an earlier test's XID thread may still be ending
    registry.start()
    try:
        time.sleep(0.5)  # every other collector has run by now
        assert standin.calls > 0
        assert standin.registered == set()
        started = {thread.name for thread in set(threading.enumerate()) - before}
        assert "collect-gpu" in started
        assert not started & {"xid-events", "collect-xid"}
    finally:
        registry.stop()
        standin.uninstall()


def test_build_registry_refuses_a_name_not_in_the_catalog(tmp_path):
    with pytest.raises(ValueError, match="no collector named bogus; collectors: nvml, gpu"):
        build_registry("h", 60.0, None, tmp_path, collectors=("bogus",))


# -- the exporter's command line -------------------------------------------------------------------------


def chosen(*argv: str) -> tuple[str, ...]:
    return enabled_collectors(parser().parse_args(list(argv)).collector_switches or ())


def test_collector_switches_are_parsed_and_the_last_one_wins():
    assert chosen() == NAMES
    assert chosen("--no-collector.xid") == tuple(name for name in NAMES if name != "xid")
    assert chosen("--no-collector.xid", "--no-collector.gpm") == ("nvml", "gpu", "gpu_processes", "host", "supervisor")
    assert chosen("--no-collector.xid", "--collector.xid") == NAMES
    assert "xid" not in chosen("--collector.xid", "--no-collector.xid")
    assert chosen("--collector.host") == NAMES


@pytest.mark.parametrize("flag", ["--no-collector.bogus", "--collector.bogus"])
def test_an_unknown_collector_is_a_one_line_error_and_nothing_starts(flag, capsys, monkeypatch):
    def must_not_run(options):
        raise AssertionError("the exporter started")

    monkeypatch.setattr("launcher.commands.exporter.run", must_not_run)
    assert main(["exporter", flag]) == EXIT_USAGE == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{flag}: no collector named 'bogus'; collectors: {', '.join(NAMES)}" in captured.err
    assert "Traceback" not in captured.err


def test_other_unknown_arguments_keep_argparses_message(capsys):
    assert main(["exporter", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_the_exporters_help_lists_every_collector_with_its_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main(["exporter", "--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for entry in CATALOG:
        line = next(line for line in lines if line.strip().startswith(f"--collector.{entry.name} "))
        assert line.rstrip().endswith(f"{entry.help} (default: enabled)"), line
    assert any("--no-collector.NAME turns one off" in line for line in lines)


def test_the_exporter_is_handed_the_chosen_collectors(monkeypatch, tmp_path):
    handed = []
    monkeypatch.setattr("launcher.commands.exporter.check_port_free", lambda *args: None)
    monkeypatch.setattr("launcher.commands.exporter.run", lambda options: handed.append(options) or 0)
    assert main(["exporter", "--no-collector.xid", "--no-collector.gpm", "--collector.gpm"]) == 0
    assert handed[0].collectors == tuple(name for name in NAMES if name != "xid")


def test_the_exporter_logs_the_collectors_turned_off_in_one_line_at_start(monkeypatch, caplog, tmp_path):
    class Registry:
        def start(self):
            pass

        def stop(self):
            pass

    built = []
    monkeypatch.setattr(exporter_main, "build_registry", lambda *args, **kwargs: built.append(kwargs) or Registry())
    monkeypatch.setattr(exporter_main, "serve", lambda *args: None)
    collectors = enabled_collectors([("xid", False), ("gpm", False)])
    with caplog.at_level(logging.INFO):
        exporter_main.run(ExporterOptions("127.0.0.1", 9402, 5.0, "h", collectors=collectors))
    assert built == [{"collectors": collectors}]
    assert [record.getMessage() for record in caplog.records if "collectors" in record.getMessage()] == [
        "collectors turned off: gpm, xid"
    ]


# -- through the launcher ---------------------------------------------------------------------------------


def exporter_argv(tmp_path, *argv: str) -> tuple[str, ...]:
    settings = merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state"), *argv]))
    return exporter_child(settings, StateLayout(settings.state_dir)).command


def collector_flags(command: tuple[str, ...]) -> list[str]:
    return [token for token in command if "collector." in token]


def test_by_default_the_exporter_child_gets_no_collector_flags(tmp_path):
    assert collector_flags(exporter_argv(tmp_path)) == []


def test_the_launcher_option_reaches_the_exporter_childs_argv(tmp_path):
    command = exporter_argv(tmp_path, "m", "--no-exporter-collector", "xid", "--no-exporter-collector=gpm")
    assert collector_flags(command) == ["--no-collector.gpm", "--no-collector.xid"]
    assert command[:4] == (sys.executable, "-m", "launcher", "exporter")
    command = exporter_argv(tmp_path, "--exporter-collector", "xid")
    assert collector_flags(command) == ["--collector.xid"]


def test_the_exporter_child_accepts_what_the_launcher_hands_it(tmp_path):
    command = exporter_argv(tmp_path, "--no-exporter-collector", "xid", "--exporter-collector", "gpm")
    options = parser().parse_args(list(command[4:]))
    assert enabled_collectors(options.collector_switches) == tuple(name for name in NAMES if name != "xid")


def test_the_launcher_option_takes_a_list_in_the_config_file_and_the_command_line_wins_per_collector(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("no-exporter-collector: [xid, gpm]\nmax-model-len: 2048\n")
    settings = load_settings(parse_command_line(["--config", str(config)]))
    assert settings.no_exporter_collector == ("gpm", "xid")
    assert settings.vllm_config == {"max-model-len": 2048}
    settings = load_settings(parse_command_line(["--config", str(config), "--exporter-collector", "xid"]))
    assert (settings.exporter_collector, settings.no_exporter_collector) == (("xid",), ("gpm",))
    config.write_text("no_exporter_collector: xid\n")
    assert load_settings(parse_command_line(["--config", str(config)])).no_exporter_collector == ("xid",)


def test_an_unknown_name_for_the_launcher_is_a_one_line_error_naming_the_valid_ones(tmp_path):
    with pytest.raises(UsageError) as raised:
        parse_command_line(["m", "--no-exporter-collector", "bogus"])
    assert str(raised.value) == (f"argument --no-exporter-collector: expected one of {', '.join(NAMES)}, got 'bogus'")
    assert raised.value.exit_code == EXIT_USAGE
    config = tmp_path / "config.yaml"
    config.write_text("no-exporter-collector: [xid, bogus]\n")
    with pytest.raises(UsageError, match=r"key 'no-exporter-collector': expected one of nvml, .*, got 'bogus'"):
        load_settings(parse_command_line(["--config", str(config)]))


def test_a_collector_both_on_and_off_in_one_place_is_refused(tmp_path):
    with pytest.raises(UsageError, match="--exporter-collector and --no-exporter-collector both name xid; keep one"):
        merge_settings(parse_command_line(["--no-exporter-collector", "xid", "--exporter-collector", "xid"]))
    config = tmp_path / "config.yaml"
    config.write_text("no-exporter-collector: [xid]\nexporter-collector: [xid]\n")
    with pytest.raises(UsageError, match=f"config file {config}: --exporter-collector and"):
        load_settings(parse_command_line(["--config", str(config)]))


def test_the_launchers_help_lists_the_option_and_the_collectors():
    text = help_text()
    line = next(line for line in text.splitlines() if line.strip().startswith("--no-exporter-collector NAME"))
    assert ", ".join(NAMES) in line
    assert "--exporter-collector NAME" in text


def test_no_launcher_option_collides_with_one_of_vllms():
    """vLLM's options pass through untouched, so one of ours with a vLLM name would swallow it. --config is
    the one deliberate overlap (ours reads a superset of vLLM's config file)."""
    vllm_flags = set(parse_help(HELP_0_32.read_text()))
    ours = {option.flag for option in OPTIONS} - {"--config"}
    assert not ours & vllm_flags

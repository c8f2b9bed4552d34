"""The exporter's collectors against the NVML HARDWARE STAND-IN (tests/support/standins): no GPU exists here."""

import json
import logging
import os
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.status_file import write_status
from observability.exporter.build import build_registry
from observability.exporter.exposition import Exposition
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus
from tests.support.vllm_shaped_tree import vllm_shaped_tree

H100 = "GPU-11111111-aaaa-bbbb-cccc-000000000000"
A10G = "GPU-22222222-aaaa-bbbb-cccc-000000000000"


def samples(registry) -> dict[str, list]:
    """name -> [(labels, value)] from the text a scrape would get."""
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(Exposition(registry).body("", False)[0].decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found, name, **labels):
    matches = [v for found_labels, v in found.get(name, []) if all(found_labels.get(k) == w for k, w in labels.items())]
    assert len(matches) == 1, f"{name} {labels}: {matches}"
    return matches[0]


def absent(found, name, **labels):
    return not [
        1 for found_labels, _ in found.get(name, []) if all(found_labels.get(k) == w for k, w in labels.items())
    ]


@pytest.fixture
def standin():
    return NvmlHardwareStandIn(two_different_gpus())


@pytest.fixture
def exporter(standin, tmp_path):
    registry = build_registry(
        "gpu-host-1", 60.0, tmp_path / "supervisor.json", tmp_path, nvml_library=standin.library()
    )
    yield registry
    registry.stop()


def collect(registry):
    for collection in registry.collections:
        collection.collect_once()
    return samples(registry)


def test_two_gpus_of_different_models_carry_dcgm_names_units_and_labels(exporter):
    registry = exporter
    found = collect(registry)
    h100 = {
        "gpu": "0",
        "UUID": H100,
        "device": "nvidia0",
        "modelName": "NVIDIA H100 80GB HBM3",
        "pci_bus_id": "00000000:18:00.0",
        "hostname": "gpu-host-1",
    }
    assert value(found, "DCGM_FI_DEV_FB_USED", **h100) == 70000
    assert value(found, "DCGM_FI_DEV_FB_RESERVED", **h100) == 512
    assert value(found, "DCGM_FI_DEV_POWER_USAGE", **h100) == 250.0  # mW -> W
    assert value(found, "DCGM_FI_DEV_GPU_UTIL", **h100) == 37
    assert value(found, "DCGM_FI_DEV_THERMAL_VIOLATION", **h100) == 5000.0  # ns -> us
    assert value(found, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", UUID=H100) == 1
    assert value(found, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", UUID=H100) == 18
    assert value(found, "swm_gpu_clocks_event_reason", UUID=H100, reason="sw_thermal_slowdown") == 1
    assert value(found, "swm_gpu_clocks_event_reason", UUID=H100, reason="hw_power_brake_slowdown") == 0
    assert value(found, "DCGM_FI_DEV_ENFORCED_POWER_LIMIT", modelName="NVIDIA A10G") == 300.0
    assert value(found, "swm_gpu_driver_info", driver_version="570.86.15", cuda_version="12.8") == 1
    assert value(found, "swm_nvml_up") == 1


def test_an_unsupported_field_is_absent_for_that_gpu_not_zero(exporter):
    registry = exporter
    found = collect(registry)
    assert value(found, "DCGM_FI_DEV_MEMORY_TEMP", UUID=H100) == 60
    assert absent(found, "DCGM_FI_DEV_MEMORY_TEMP", UUID=A10G)
    assert value(found, "DCGM_FI_DEV_ROW_REMAP_FAILURE", UUID=H100) == 0
    assert absent(found, "DCGM_FI_DEV_ROW_REMAP_FAILURE", UUID=A10G)
    assert absent(found, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", UUID=A10G)
    assert value(found, "swm_exporter_collector_up", collector="gpu") == 1


def test_a_lost_gpu_is_reported_as_lost_and_the_other_keeps_reporting(exporter, standin):
    registry = exporter
    collect(registry)
    standin.gpus[0].lost = True
    found = collect(registry)
    assert value(found, "swm_gpu_lost", UUID=H100, modelName="NVIDIA H100 80GB HBM3") == 1
    assert absent(found, "DCGM_FI_DEV_FB_USED", UUID=H100)
    assert value(found, "DCGM_FI_DEV_FB_USED", UUID=A10G) == 1000
    assert value(found, "swm_exporter_collector_up", collector="gpu") == 1
    standin.gpus[0].lost = False
    found = collect(registry)
    assert absent(found, "swm_gpu_lost", UUID=H100)
    assert value(found, "DCGM_FI_DEV_FB_USED", UUID=H100) == 70000


def test_gpu_memory_per_process_tells_the_vllm_tree_from_strangers(exporter, standin, tmp_path):
    registry = exporter
    stranger = os.getpid()
    with vllm_shaped_tree(tmp_path / "supervisor.json") as (_, engine):
        standin.gpus[0].processes = [(engine, 60 * 2**30), (stranger, 2**30)]
        found = collect(registry)
    assert value(found, "swm_gpu_process_memory_used_bytes", pid=str(engine), in_vllm_tree="true") == 60 * 2**30
    assert value(found, "swm_gpu_process_memory_used_bytes", pid=str(stranger), in_vllm_tree="false") == 2**30
    assert value(found, "swm_gpu_memory_used_by_owner_bytes", UUID=H100, in_vllm_tree="true") == 60 * 2**30


def test_xid_events_are_counted_so_repeats_are_not_lost(exporter, standin):
    registry = exporter
    registry.start_sources()
    deadline = time.monotonic() + 10
    while len(standin.registered) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert standin.registered == {0, 1}
    found = collect(registry)
    assert value(found, "swm_gpu_xid_events_total", UUID=H100) == 0  # present before the first XID
    for event in ((0, 79), (0, 79), (0, 48)):
        standin.xid_events.put(event)
    while not standin.xid_events.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    found = collect(registry)
    assert value(found, "swm_gpu_xid_errors_total", UUID=H100, xid="79") == 2
    assert value(found, "swm_gpu_xid_errors_total", UUID=H100, xid="48") == 1
    assert value(found, "swm_gpu_xid_events_total", UUID=H100) == 3
    assert value(found, "swm_gpu_xid_events_total", UUID=A10G) == 0
    assert value(found, "DCGM_FI_DEV_XID_ERRORS", UUID=H100) == 48
    assert time.time() - value(found, "swm_gpu_xid_last_seen_timestamp_seconds", UUID=H100, xid="79") < 30


def test_gpm_utilization_only_where_supported(exporter):
    registry = exporter
    collect(registry)  # GPM needs two samples
    found = collect(registry)
    assert value(found, "DCGM_FI_PROF_SM_ACTIVE", UUID=H100) == pytest.approx(0.8)
    assert value(found, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", UUID=H100) == pytest.approx(0.45)
    assert absent(found, "DCGM_FI_PROF_SM_ACTIVE", UUID=A10G)


def test_without_nvml_the_exporter_serves_host_metrics_and_logs_the_reason_once(tmp_path, caplog):
    standin = NvmlHardwareStandIn([], driver_missing=True)
    registry = build_registry("cpu-host", 60.0, None, tmp_path, nvml_library=standin.library())
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            found = collect(registry)
    assert value(found, "swm_nvml_up") == 0
    assert value(found, "swm_host_memory_total_bytes") > 0
    assert all(
        value(found, "swm_exporter_collector_up", collector=name) == 1
        for name in ("gpu", "gpu_processes", "gpm", "host", "nvml")
    )
    assert sum("NVML unavailable" in record.message for record in caplog.records) == 1


def test_a_scrape_never_calls_nvml_so_a_hung_driver_cannot_hang_it(tmp_path, standin):
    registry = build_registry("gpu-host-1", 0.2, None, tmp_path, nvml_library=standin.library())
    registry.start()
    try:
        time.sleep(0.5)
        standin.hang.set()  # every NVML device call now blocks
        time.sleep(0.5)
        calls = standin.calls
        text = Exposition(registry).body("", False)[0].decode()  # returns, with every NVML call blocked
        assert standin.calls == calls
        assert "DCGM_FI_DEV_FB_USED" in text  # the last snapshot, still served
        assert 'swm_exporter_collector_up{collector="host"} 1.0' in text
    finally:
        standin.release.set()
        registry.stop()


def test_our_own_metric_names_have_no_colons(exporter):
    registry = exporter
    names = set(collect(registry))
    assert names
    assert all(":" not in name for name in names)
    assert all(name.startswith(("swm_", "DCGM_FI_")) for name in names)


@pytest.mark.parametrize(("age", "trusted"), [(20, True), (40, False), (300, False)])
def test_a_stale_launcher_state_is_not_trusted(tmp_path, exporter, age, trusted):
    """docs/faults.md: the exporter withholds the child metrics from a status over 30 s old (three of the
    launcher's 10 s rewrites missed), and says how old it is."""
    registry = exporter
    write_status(
        tmp_path / "supervisor.json",
        SupervisorStatus(
            launcher_pid=os.getpid(),
            updated_at=time.time() - age,
            children=[ChildStatus("vllm", "healthy", True, 1, 0, None, 0.0, 0.0)],
        ),
    )
    found = collect(registry)
    assert value(found, "swm_supervisor_up") == (1 if trusted else 0)
    assert ("swm_child_up" in found) == trusted
    assert age <= value(found, "swm_supervisor_state_age_seconds") < age + 5
    json.loads((tmp_path / "supervisor.json").read_text())


def test_openmetrics_and_gzip_for_prometheus_and_a_cache_until_a_collection_changes(exporter):
    import gzip

    registry = exporter
    collect(registry)
    exposition = Exposition(registry)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    body, content_type, gzipped = exposition.body(accept, True)
    assert content_type.startswith("application/openmetrics-text")
    assert gzipped
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    assert "DCGM_FI_DEV_FB_USED" in text
    assert exposition.body(accept, True)[0] is body  # nothing changed: served from the cache
    collect(registry)
    assert exposition.body(accept, True)[0] is not body
    plain, plain_type, plain_gzipped = exposition.body("", False)
    assert plain_type.startswith("text/plain") and not plain_gzipped and b"# EOF" not in plain


def test_an_unexpected_nvml_error_loses_only_that_field_of_that_gpu(exporter, standin):
    import pynvml

    registry = exporter
    standin.gpus[0].failing["nvmlDeviceGetPowerUsage"] = pynvml.NVML_ERROR_UNKNOWN
    standin.gpus[1].failing["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    standin.gpus[1].failing["nvmlDeviceGetCurrentClocksThrottleReasons"] = pynvml.NVML_ERROR_NOT_SUPPORTED
    found = collect(registry)
    assert absent(found, "DCGM_FI_DEV_POWER_USAGE", UUID=H100)
    assert value(found, "DCGM_FI_DEV_POWER_USAGE", UUID=A10G) == 250.0
    assert value(found, "DCGM_FI_DEV_FB_USED", UUID=H100) == 70000
    assert absent(found, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", UUID=A10G)  # neither call answers: absent
    assert value(found, "swm_exporter_collector_up", collector="gpu") == 1

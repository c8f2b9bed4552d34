"""The exporter on every driver profile of the NVML HARDWARE STAND-IN (tests/support/standins): the real pynvml
over a fake libnvidia-ml, so errors, missing functions and struct versions are the real bindings' own.
No GPU exists here; scripts/gpu-check runs the same collectors on a real one."""

import logging
import time

import pynvml
import pytest

from observability.exporter.build import build_registry
from tests.support.standins.nvml_hardware_standin import (
    CURRENT,
    MIG,
    OLD_DRIVER,
    NvmlHardwareStandIn,
    two_different_gpus,
)
from tests.unit.test_exporter_with_nvml_standin import A10G, H100, absent, collect, value

PROFILES = [CURRENT, OLD_DRIVER, MIG]


@pytest.fixture(params=PROFILES, ids=lambda profile: profile.name)
def profile(request):
    return request.param


def registry_for(standin, tmp_path):
    return build_registry("gpu-host-1", 60.0, None, tmp_path, nvml_library=standin.library())


def test_errors_are_the_real_bindings_per_code_classes():
    standin = NvmlHardwareStandIn(two_different_gpus(), OLD_DRIVER)
    with standin.installed() as nvml:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(1)
        with pytest.raises(nvml.NVMLError_NotSupported):
            nvml.nvmlDeviceGetRemappedRows(handle)
        with pytest.raises(nvml.NVMLError_FunctionNotFound):
            nvml.nvmlDeviceGetMemoryInfo(handle, nvml.nvmlMemory_v2)
        with pytest.raises(nvml.NVMLLibraryMismatchError):  # not an NVMLError: the old collector died of it
            nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        assert not issubclass(nvml.NVMLLibraryMismatchError, nvml.NVMLError)
        standin.gpus[0].lost = True
        with pytest.raises(nvml.NVMLError_GpuIsLost):
            nvml.nvmlDeviceGetHandleByIndex(0)
        standin.timeouts.add("nvmlDeviceGetPowerUsage")
        with pytest.raises(nvml.NVMLError_Timeout):
            nvml.nvmlDeviceGetPowerUsage(handle)


def test_framebuffer_metrics_on_every_driver(profile, tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus(), profile)
    registry = registry_for(standin, tmp_path)
    found = collect(registry)
    assert value(found, "DCGM_FI_DEV_FB_TOTAL", UUID=H100) == 81559
    if profile is OLD_DRIVER:  # v1: no reserved, and "used" counts it
        assert value(found, "DCGM_FI_DEV_FB_USED", UUID=H100) == 70000 + 512
        assert absent(found, "DCGM_FI_DEV_FB_RESERVED", UUID=H100)
    else:
        assert value(found, "DCGM_FI_DEV_FB_USED", UUID=H100) == 70000
        assert value(found, "DCGM_FI_DEV_FB_RESERVED", UUID=H100) == 512
    assert value(found, "swm_exporter_collector_up", collector="gpu") == 1


def test_clock_event_reasons_fall_back_to_the_pre_535_call(tmp_path):
    found = collect(registry_for(NvmlHardwareStandIn(two_different_gpus(), OLD_DRIVER), tmp_path))
    assert value(found, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", UUID=H100) == 0x21
    assert value(found, "swm_gpu_clocks_event_reason", UUID=H100, reason="sw_thermal_slowdown") == 1


def test_processes_through_the_v3_v2_and_v1_structs(profile, tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus(), profile)
    standin.gpus[0].processes = [(4242, 40 * 2**30), (4343, None)]
    standin.gpus[1].processes = [(4444, 2**30)]
    found = collect(registry_for(standin, tmp_path))
    assert value(found, "swm_exporter_collector_up", collector="gpu_processes") == 1
    if profile is MIG:  # NVML cannot tell per-process memory: no rows, not zeros, and no error
        assert absent(found, "swm_gpu_process_memory_used_bytes")
        return
    assert value(found, "swm_gpu_process_memory_used_bytes", pid="4242", UUID=H100) == 40 * 2**30
    assert absent(found, "swm_gpu_process_memory_used_bytes", pid="4343")  # None: unknown, left out
    assert value(found, "swm_gpu_process_memory_used_bytes", pid="4444", UUID=A10G) == 2**30


def test_gpm_where_the_driver_has_it_and_never_a_leaked_sample(profile, tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus(), profile)
    registry = registry_for(standin, tmp_path)
    for _ in range(4):
        found = collect(registry)
        time.sleep(0.01)
    if profile is CURRENT:
        assert value(found, "DCGM_FI_PROF_SM_ACTIVE", UUID=H100) == pytest.approx(0.8)
        assert standin.live_gpm_samples == 1  # the one kept for the next collection
    else:
        assert absent(found, "DCGM_FI_PROF_SM_ACTIVE")
        assert standin.live_gpm_samples == 0


def test_a_failing_gpm_sample_is_freed_not_leaked(tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus())
    registry = registry_for(standin, tmp_path)
    collect(registry)
    standin.gpus[0].failing["nvmlGpmSampleGet"] = pynvml.NVML_ERROR_UNKNOWN
    for _ in range(3):
        found = collect(registry)
    assert standin.live_gpm_samples == 0
    assert absent(found, "DCGM_FI_PROF_SM_ACTIVE")
    assert value(found, "swm_exporter_collector_up", collector="gpm") == 1


def test_gpm_samples_belong_to_one_handle():
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.gpus[1].gpm = {pynvml.NVML_GPM_METRIC_SM_UTIL: 10.0}
    with standin.installed() as nvml:
        nvml.nvmlInit()
        first, second = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByIndex(1)
        older = nvml.nvmlGpmSampleGet(first, nvml.nvmlGpmSampleAlloc())
        time.sleep(0.01)
        newer = nvml.nvmlGpmSampleGet(second, nvml.nvmlGpmSampleAlloc())
        request = nvml.c_nvmlGpmMetricsGet_t()
        request.version, request.numMetrics = nvml.NVML_GPM_METRICS_GET_VERSION, 1
        request.sample1, request.sample2 = older, newer
        request.metrics[0].metricId = nvml.NVML_GPM_METRIC_SM_UTIL
        with pytest.raises(nvml.NVMLError_InvalidArgument):
            nvml.nvmlGpmMetricsGet(request)


def test_a_timeout_loses_that_field_only_and_slow_calls_still_collect(tmp_path, caplog):
    """That a scrape never waits for NVML at all is test_exporter_with_nvml_standin.py's
    test_a_scrape_never_calls_nvml_so_a_hung_driver_cannot_hang_it."""
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.timeouts.add("nvmlDeviceGetPowerUsage")
    standin.call_delay_s = 0.002
    with caplog.at_level(logging.WARNING):
        found = collect(registry_for(standin, tmp_path))
    assert absent(found, "DCGM_FI_DEV_POWER_USAGE")
    assert value(found, "DCGM_FI_DEV_FB_USED", UUID=H100) == 70000
    assert any("Timeout" in record.getMessage() for record in caplog.records)


def test_no_driver_is_one_line_and_host_metrics_go_on(tmp_path, caplog):
    standin = NvmlHardwareStandIn([], driver_missing=True)
    with caplog.at_level(logging.WARNING):
        found = collect(registry_for(standin, tmp_path))
    assert value(found, "swm_nvml_up") == 0
    assert "swm_host_cpus" in found
    assert [r.getMessage() for r in caplog.records if "NVML unavailable" in r.getMessage()] == [
        "NVML unavailable, GPU metrics off (host and supervisor metrics go on): Driver Not Loaded"
    ]

"""GPU energy in joules (NVML's counter, else integrated from power) and the GPUs vLLM uses, against the NVML
HARDWARE STAND-IN (tests/support/standins): the stand-in's counter rises with power over a clock the test holds."""

import ctypes
import os
import subprocess
import sys
import time
from dataclasses import replace

import pynvml
import pytest

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.status_file import write_status
from observability.exporter.build import build_registry
from observability.exporter.collection import SnapshotRegistry
from observability.exporter.gpu_collector import GpuCollector
from observability.exporter.gpu_energy import Counter, EnergyMeter
from observability.exporter.nvml_session import NvmlSession
from observability.exporter.vllm_tree import SupervisorView
from tests.support.standins.nvml_hardware_standin import (
    CURRENT,
    MIG,
    OLD_DRIVER,
    DriverProfile,
    NvmlHardwareStandIn,
    two_different_gpus,
)
from tests.support.standins.standin_gpu_exporter import place_vllm, standin_with
from tests.support.vllm_shaped_tree import vllm_shaped_tree
from tests.unit.test_exporter_with_nvml_standin import A10G, H100, absent, collect, value

STARTING_J = 123_456.789  # the stand-in's starting counter, 123 456 789 mJ
WATTS = 250.0  # the stand-in's default draw


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def gpu_registry(standin: NvmlHardwareStandIn, clock: Clock) -> SnapshotRegistry:
    """The gpu collector alone, on the test's clock (the stand-in runs on the same one)."""
    return SnapshotRegistry([GpuCollector(NvmlSession(standin.library()), "gpu-host-1", clock=clock)], 60.0)


def energy(found, uuid):
    return value(found, "swm_gpu_energy_joules_total", UUID=uuid)


def source(found, uuid):
    rows = [labels["source"] for labels, v in found.get("swm_gpu_energy_source", []) if labels["UUID"] == uuid]
    assert len(rows) == 1, rows
    assert value(found, "swm_gpu_energy_source", UUID=uuid) == 1
    return rows[0]


@pytest.mark.parametrize(("profile", "expected"), [(CURRENT, "nvml"), (OLD_DRIVER, "integrated"), (MIG, "nvml")])
def test_each_gpu_says_where_its_energy_comes_from(profile, expected, tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus(), profile)
    found = collect(build_registry("gpu-host-1", 60.0, None, tmp_path, nvml_library=standin.library()))
    assert source(found, H100) == source(found, A10G) == expected
    if expected == "nvml":
        assert energy(found, H100) == pytest.approx(STARTING_J, abs=1.0)  # mJ -> J
        assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" in found
    else:  # integration starts at 0 with the exporter; DCGM's field stays absent where NVML has no counter
        assert energy(found, H100) == 0
        assert absent(found, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")


def test_a_gpu_without_the_counter_is_integrated_beside_one_with_it(clock):
    """The same draw over the same time: NVML's counter and the integrated one rise alike."""
    standin = NvmlHardwareStandIn(two_different_gpus(), clock=clock)
    standin.gpus[1].unsupported.add("nvmlDeviceGetTotalEnergyConsumption")
    registry = gpu_registry(standin, clock)
    first = collect(registry)
    assert (source(first, H100), source(first, A10G)) == ("nvml", "integrated")
    for _ in range(6):
        clock.now += 5.0
        found = collect(registry)
    assert energy(found, A10G) == pytest.approx(WATTS * 30.0, abs=1e-6)
    assert energy(found, H100) - energy(first, H100) == pytest.approx(WATTS * 30.0, abs=0.001)  # whole mJ


def test_the_integrated_counter_follows_the_power_samples(clock):
    standin = NvmlHardwareStandIn(two_different_gpus(), OLD_DRIVER, clock=clock)
    registry = gpu_registry(standin, clock)
    assert energy(collect(registry), H100) == 0
    clock.now += 10.0
    assert energy(collect(registry), H100) == pytest.approx(2500.0)  # 250 W x 10 s
    standin.set_power(0, 100_000)
    clock.now += 10.0
    assert energy(collect(registry), H100) == pytest.approx(2500.0 + (250 + 100) / 2 * 10)  # a trapezoid
    clock.now += 10.0
    assert energy(collect(registry), H100) == pytest.approx(4250.0 + 1000.0)
    assert energy(collect(registry), A10G) == pytest.approx(250.0 * 30)


def test_a_missing_symbol_selects_integration_too(clock):
    """A driver without the function at all (NVML_ERROR_FUNCTION_NOT_FOUND), not only a GPU without the field."""
    no_symbol = DriverProfile("no energy symbol", missing=frozenset({"nvmlDeviceGetTotalEnergyConsumption"}))
    standin = NvmlHardwareStandIn(two_different_gpus(), no_symbol, clock=clock)
    registry = gpu_registry(standin, clock)
    collect(registry)
    clock.now += 4.0
    found = collect(registry)
    assert source(found, H100) == "integrated"
    assert energy(found, H100) == pytest.approx(1000.0)


def test_a_driver_reload_shows_as_a_counter_reset(clock):
    standin = NvmlHardwareStandIn(two_different_gpus(), clock=clock)
    registry = gpu_registry(standin, clock)
    clock.now += 10.0
    before = energy(collect(registry), H100)
    assert before == pytest.approx(STARTING_J + 2500.0, abs=0.001)
    standin.reload_driver()
    clock.now += 10.0
    found = collect(registry)
    assert energy(found, H100) == pytest.approx(2500.0)  # from 0 again: exported as it is, rate() sees a reset
    assert value(found, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", UUID=H100) == 2_500_000
    assert source(found, H100) == "nvml"


def test_a_failing_counter_skips_that_sample_without_switching_sources(clock):
    standin = NvmlHardwareStandIn(two_different_gpus(), clock=clock)
    registry = gpu_registry(standin, clock)
    collect(registry)
    standin.timeouts.add("nvmlDeviceGetTotalEnergyConsumption")
    clock.now += 5.0
    found = collect(registry)
    assert absent(found, "swm_gpu_energy_joules_total", UUID=H100)
    assert absent(found, "swm_gpu_energy_source", UUID=H100)
    standin.timeouts.clear()
    clock.now += 5.0
    found = collect(registry)
    assert source(found, H100) == "nvml"
    assert energy(found, H100) == pytest.approx(STARTING_J + 2500.0, abs=0.001)


def test_a_gap_in_the_power_samples_is_left_out_not_guessed(clock):
    standin = NvmlHardwareStandIn(two_different_gpus(), OLD_DRIVER, clock=clock)
    registry = gpu_registry(standin, clock)
    collect(registry)
    clock.now += 10.0
    collect(registry)  # 2500 J
    standin.gpus[0].lost = True
    clock.now += 100.0
    found = collect(registry)
    assert value(found, "swm_gpu_lost", UUID=H100) == 1
    standin.gpus[0].lost = False
    clock.now += 10.0
    assert energy(collect(registry), H100) == pytest.approx(2500.0)  # the lost time is not counted
    clock.now += 10.0
    assert energy(collect(registry), H100) == pytest.approx(5000.0)


def test_the_trapezoid_and_what_the_meter_does_without_a_number():
    meter = EnergyMeter()
    assert meter.read("a", Counter.UNKNOWN, 100.0, 0.0) is None  # no source known yet: nothing to report
    assert meter.read("a", Counter.MISSING, 100.0, 0.0).joules == 0
    assert meter.read("a", Counter.MISSING, 300.0, 10.0).joules == pytest.approx(2000.0)
    reading = meter.read("a", Counter.UNKNOWN, 300.0, 20.0)  # an integrated GPU keeps integrating
    assert (reading.source, reading.joules) == ("integrated", pytest.approx(5000.0))
    assert meter.read("b", 5_000.0, None, 0.0).joules == 5.0


def test_the_standin_checks_the_struct_it_is_handed():
    standin = NvmlHardwareStandIn(two_different_gpus())
    with standin.installed() as nvml:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        function = nvml._nvmlGetFunctionPointer("nvmlDeviceGetTotalEnergyConsumption")
        wrong = pynvml.c_uint(0)
        assert function(handle, ctypes.byref(wrong)) == pynvml.NVML_ERROR_INVALID_ARGUMENT
        assert function(None, ctypes.byref(ctypes.c_uint64(0))) == pynvml.NVML_ERROR_INVALID_ARGUMENT
        assert nvml.nvmlDeviceGetTotalEnergyConsumption(handle) >= 123_456_789


def three_gpus() -> list:
    h100, a10g = two_different_gpus()
    second_h100 = replace(h100, uuid="GPU-33333333-aaaa-bbbb-cccc-000000000000", minor=2, pci_bus_id="00000000:2A:00.0")
    return [h100, a10g, second_h100]


@pytest.mark.parametrize("profile", [CURRENT, MIG], ids=lambda profile: profile.name)
def test_used_by_vllm_marks_every_gpu_of_vllms_tree_and_no_strangers(profile, tmp_path):
    """vLLM on two GPUs (its API server on one, its engine on the other), a stranger alone on a third. Under MIG
    NVML cannot tell per-process memory; the GPU is vLLM's all the same."""
    third = "GPU-33333333-aaaa-bbbb-cccc-000000000000"
    standin = NvmlHardwareStandIn(three_gpus(), profile)
    registry = build_registry(
        "gpu-host-1", 60.0, tmp_path / "supervisor.json", tmp_path, nvml_library=standin.library()
    )
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with vllm_shaped_tree(tmp_path / "supervisor.json") as (api_server, engine):
            standin.gpus[0].processes = [(engine, 60 * 2**30)]
            standin.gpus[1].processes = [(api_server, 2**30), (stranger.pid, 2**29)]
            standin.gpus[2].processes = [(stranger.pid, 2**30)]
            found = collect(registry)
    finally:
        stranger.kill()
        stranger.wait()
        registry.stop()
    assert value(found, "swm_gpu_used_by_vllm", UUID=H100) == 1
    assert value(found, "swm_gpu_used_by_vllm", UUID=A10G) == 1
    assert value(found, "swm_gpu_used_by_vllm", UUID=third) == 0


def test_used_by_vllm_is_0_without_a_launcher_and_on_an_idle_gpu(tmp_path):
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.gpus[0].processes = [(os.getpid(), 2**30)]
    found = collect(build_registry("gpu-host-1", 60.0, None, tmp_path, nvml_library=standin.library()))
    assert value(found, "swm_gpu_used_by_vllm", UUID=H100) == 0
    assert value(found, "swm_gpu_used_by_vllm", UUID=A10G) == 0


def test_the_standin_exporter_puts_vllms_tree_on_its_first_gpus_for_the_live_test(tmp_path):
    """The live J/token test runs a CPU vLLM: the stand-in exporter shows its tree on the GPUs it is told."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state_file = tmp_path / "supervisor.json"
        write_status(
            state_file,
            SupervisorStatus(
                launcher_pid=os.getpid(),
                updated_at=time.time(),
                children=[ChildStatus("vllm", "healthy", True, parent.pid, 0, None, time.time(), time.time())],
            ),
        )
        standin = standin_with(2)
        place_vllm(standin, SupervisorView(state_file), 1)
        found = collect(build_registry("gpu-host-1", 60.0, state_file, tmp_path, nvml_library=standin.library()))
    finally:
        parent.kill()
        parent.wait()
    assert value(found, "swm_gpu_used_by_vllm", UUID=H100) == 1
    assert value(found, "swm_gpu_used_by_vllm", UUID=A10G) == 0

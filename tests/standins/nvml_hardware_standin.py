"""HARDWARE STAND-IN: a fake NVML library for machines without an NVIDIA GPU.

This is not NVML. It imitates the parts of nvidia-ml-py's `pynvml` module that the exporter calls,
with GPUs described in Python, so the exporter's logic can be tested where no GPU exists. The real
library is checked by scripts/gpu-check on a machine with a GPU.

It models what the tests need: GPUs of different models, fields one GPU does not support
(NVML_ERROR_NOT_SUPPORTED), a GPU that falls off the bus (NVML_ERROR_GPU_IS_LOST), compute processes,
a stream of XID events, and GPM samples.
"""

from __future__ import annotations

import inspect
import queue
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml as _real  # constants and ctypes structs only: nothing here loads libnvidia-ml

MIB = 1024 * 1024


class StandInNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"stand-in NVML error {value}")
        self.value = value


@dataclass
class StandInGpu:
    name: str
    uuid: str
    pci_bus_id: str
    minor: int
    memory_total_mib: int
    memory_used_mib: int
    memory_reserved_mib: int = 512
    gpu_util: int = 37
    memory_util: int = 12
    power_mw: int = 250_000
    power_limit_mw: int = 700_000
    energy_mj: int = 123_456_789
    temperature_c: int = 55
    memory_temperature_c: int | None = 60
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    clock_event_reasons: int = 0x20 | 0x1  # sw thermal slowdown + idle
    power_violation_ns: int = 2_000_000
    thermal_violation_ns: int = 5_000_000
    ecc: dict[tuple[int, int], int] = field(default_factory=lambda: {(0, 0): 3, (1, 0): 0, (0, 1): 40, (1, 1): 1})
    remapped_rows: tuple[int, int, int, int] | None = (2, 1, 0, 0)
    nvlink_states: list[int] | None = None  # None: no NVLink on this board
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes)
    gpm: dict[int, float] | None = None  # NVML_GPM_METRIC_* -> percent; None: GPM unsupported
    unsupported: set[str] = field(default_factory=set)  # pynvml function names answering NOT_SUPPORTED
    failing: dict[str, int] = field(default_factory=dict)  # function name -> another NVML error code
    lost: bool = False


class NvmlHardwareStandIn:
    """Duck-types the `pynvml` module. Pass it where the exporter takes `nvml_library`."""

    NVMLError = StandInNVMLError

    def __init__(self, gpus: list[StandInGpu], driver_missing: bool = False) -> None:
        self.gpus = gpus
        self.driver_missing = driver_missing
        self.xid_events: queue.Queue[tuple[int, int]] = queue.Queue()  # (gpu index, xid)
        self.registered: set[int] = set()
        self.calls = 0
        self.hang = threading.Event()  # set it, and every device call blocks until release is set
        self.release = threading.Event()
        self._gpm_last_device: int | None = None

    def __getattr__(self, name: str) -> Any:
        # Constants and ctypes structs come from the real module; its functions never do.
        value = getattr(_real, name, None)
        if value is None or inspect.isfunction(value):
            raise AttributeError(name)
        return value

    # -- helpers -------------------------------------------------------------------------------

    def _gpu(self, handle: Any, function: str) -> StandInGpu:
        self.calls += 1
        if self.hang.is_set():
            self.release.wait()
        gpu = self.gpus[handle]
        if gpu.lost:
            raise StandInNVMLError(_real.NVML_ERROR_GPU_IS_LOST)
        if function in gpu.unsupported:
            raise StandInNVMLError(_real.NVML_ERROR_NOT_SUPPORTED)
        if function in gpu.failing:
            raise StandInNVMLError(gpu.failing[function])
        return gpu

    # -- system --------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.driver_missing:
            raise StandInNVMLError(_real.NVML_ERROR_LIBRARY_NOT_FOUND)

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.86.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    def nvmlSystemGetNVMLVersion(self) -> str:
        return "12.570.86.15"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index >= len(self.gpus):
            raise StandInNVMLError(_real.NVML_ERROR_INVALID_ARGUMENT)
        return index

    # -- identity ------------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetPciInfo(self, handle: int) -> Any:
        return SimpleNamespace(busId=self._gpu(handle, "nvmlDeviceGetPciInfo").pci_bus_id.encode())

    def nvmlDeviceGetMinorNumber(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetMinorNumber").minor

    # -- fields --------------------------------------------------------------------------------

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.gpu_util, memory=gpu.memory_util)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        used = gpu.memory_used_mib * MIB
        total = gpu.memory_total_mib * MIB
        info = SimpleNamespace(total=total, used=used, free=total - used)
        if version:
            info.reserved = gpu.memory_reserved_mib * MIB
            info.free = total - used - info.reserved
        return info

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetTemperature").temperature_c

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: Any) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        values = (_real.c_nvmlFieldValue_t * len(field_ids))()
        for position, field_id in enumerate(field_ids):
            values[position].fieldId = field_id
            if field_id == _real.NVML_FI_DEV_MEMORY_TEMP and gpu.memory_temperature_c is not None:
                values[position].valueType = _real.NVML_VALUE_TYPE_UNSIGNED_INT
                values[position].value.uiVal = gpu.memory_temperature_c
                values[position].nvmlReturn = _real.NVML_SUCCESS
            else:
                values[position].nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        return gpu.sm_clock_mhz if clock == _real.NVML_CLOCK_SM else gpu.memory_clock_mhz

    def nvmlDeviceGetEncoderUtilization(self, handle: int) -> list[int]:
        self._gpu(handle, "nvmlDeviceGetEncoderUtilization")
        return [3, 167000]

    def nvmlDeviceGetDecoderUtilization(self, handle: int) -> list[int]:
        self._gpu(handle, "nvmlDeviceGetDecoderUtilization")
        return [4, 167000]

    def nvmlDeviceGetPcieReplayCounter(self, handle: int) -> int:
        self._gpu(handle, "nvmlDeviceGetPcieReplayCounter")
        return 7

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").clock_event_reasons

    def nvmlDeviceGetViolationStatus(self, handle: int, policy: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetViolationStatus")
        value = gpu.power_violation_ns if policy == _real.NVML_PERF_POLICY_POWER else gpu.thermal_violation_ns
        return SimpleNamespace(referenceTime=0, violationTime=value)

    def nvmlDeviceGetTotalEccErrors(self, handle: int, error_type: int, counter_type: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetTotalEccErrors").ecc[(error_type, counter_type)]

    def nvmlDeviceGetRemappedRows(self, handle: int) -> tuple[int, int, int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetRemappedRows")
        if gpu.remapped_rows is None:
            raise StandInNVMLError(_real.NVML_ERROR_NOT_SUPPORTED)
        return gpu.remapped_rows

    def nvmlDeviceGetNvLinkState(self, handle: int, link: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetNvLinkState")
        if gpu.nvlink_states is None:
            raise StandInNVMLError(_real.NVML_ERROR_NOT_SUPPORTED)
        if link >= len(gpu.nvlink_states):
            raise StandInNVMLError(_real.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.nvlink_states[link]

    def nvmlDeviceGetNvLinkErrorCounter(self, handle: int, link: int, counter: int) -> int:
        self._gpu(handle, "nvmlDeviceGetNvLinkErrorCounter")
        return 1

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes]

    # -- events --------------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, handle: int, event_types: int, event_set: Any) -> None:
        self._gpu(handle, "nvmlDeviceRegisterEvents")
        self.registered.add(handle)

    def nvmlEventSetWait_v2(self, event_set: Any, timeout_ms: int) -> Any:
        try:
            index, xid = self.xid_events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise StandInNVMLError(_real.NVML_ERROR_TIMEOUT) from None
        return SimpleNamespace(device=index, eventType=_real.nvmlEventTypeXidCriticalError, eventData=xid)

    def nvmlEventSetFree(self, event_set: Any) -> None:
        pass

    # -- GPM -----------------------------------------------------------------------------------

    def nvmlGpmQueryDeviceSupport(self, handle: int) -> Any:
        gpu = self._gpu(handle, "nvmlGpmQueryDeviceSupport")
        return SimpleNamespace(isSupportedDevice=1 if gpu.gpm is not None else 0)

    def nvmlGpmSampleAlloc(self) -> Any:
        return _real.c_nvmlGpmSample_t()

    def nvmlGpmSampleGet(self, handle: int, sample: Any) -> Any:
        self._gpu(handle, "nvmlGpmSampleGet")
        self._gpm_last_device = handle
        return sample

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        pass

    def nvmlGpmMetricsGet(self, request: Any) -> Any:
        gpm = self.gpus[self._gpm_last_device].gpm or {}
        for position in range(request.numMetrics):
            metric = request.metrics[position]
            if metric.metricId in gpm:
                metric.value = gpm[metric.metricId]
                metric.nvmlReturn = _real.NVML_SUCCESS
            else:
                metric.nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
        return request


def two_different_gpus() -> list[StandInGpu]:
    """An H100 with NVLink and GPM, and an A10G that lacks memory temperature, row remapping and GPM."""
    return [
        StandInGpu(
            name="NVIDIA H100 80GB HBM3",
            uuid="GPU-11111111-aaaa-bbbb-cccc-000000000000",
            pci_bus_id="00000000:18:00.0",
            minor=0,
            memory_total_mib=81559,
            memory_used_mib=70000,
            nvlink_states=[1] * 18,
            gpm={
                _real.NVML_GPM_METRIC_SM_UTIL: 80.0,
                _real.NVML_GPM_METRIC_ANY_TENSOR_UTIL: 45.0,
                _real.NVML_GPM_METRIC_DRAM_BW_UTIL: 60.0,
            },
        ),
        StandInGpu(
            name="NVIDIA A10G",
            uuid="GPU-22222222-aaaa-bbbb-cccc-000000000000",
            pci_bus_id="00000000:1E:00.0",
            minor=1,
            memory_total_mib=23028,
            memory_used_mib=1000,
            memory_temperature_c=None,
            remapped_rows=None,
            unsupported={"nvmlDeviceGetRemappedRows"},
            power_limit_mw=300_000,
        ),
    ]

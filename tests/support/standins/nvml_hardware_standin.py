"""HARDWARE STAND-IN: a fake libnvidia-ml under the real nvidia-ml-py, for machines without an NVIDIA GPU.

This is not NVML. The exporter talks to the real `pynvml` module, whose Python layer builds the real
ctypes structs and raises the real per-code errors (`NVMLError(code)` -> `NVMLError_NotSupported` ...);
only the C library underneath is replaced (`pynvml.nvmlLib`). Each C function here takes the ctypes
arguments the real one does, fills the structs pynvml hands it, and returns an NVML return code. A
function a driver lacks is simply absent, so pynvml raises NVMLError_FunctionNotFound for it, and its
unversioned wrappers NVMLLibraryMismatchError, exactly as with an old driver.

Driver profiles (DriverProfile): CURRENT; OLD_DRIVER (before about 510, on a GPU older than Volta: no
v2 memory struct, no clock-event reasons but the old throttle-reasons call, processes only through the
v1 struct, no GPM, and the total energy counter NOT_SUPPORTED, as NVML answers on pre-Volta GPUs);
MIG (MIG mode on: per-process memory not reported, utilization NOT_SUPPORTED, no GPM).

Energy: each GPU's total energy counter (mJ) rises by its power draw over the stand-in's own clock
(`clock`, time.monotonic unless a test hands in its own). Change the draw with set_power(), which
settles the energy drawn so far at the old power first; reload_driver() restarts every counter at 0.

What it cannot model: timing and values of real hardware (utilization moves only when a test says so),
MIG instance handles, vGPU, NVLink bandwidth counters, the driver's own locking, and anything below
the C API. The real library is checked by scripts/gpu-check on a machine with a GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pynvml

MIB = 1024 * 1024
SUCCESS = pynvml.NVML_SUCCESS


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
    energy_mj: float = 123_456_789  # the counter as of energy_at on the stand-in's clock
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
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes or None)
    gpm: dict[int, float] | None = None  # NVML_GPM_METRIC_* -> percent; None: GPM unsupported
    unsupported: set[str] = field(default_factory=set)  # C function names answering NOT_SUPPORTED
    failing: dict[str, int] = field(default_factory=dict)  # C function name -> another NVML return code
    lost: bool = False
    energy_at: float | None = None  # when energy_mj was last settled; None: when the stand-in is made


@dataclass(frozen=True)
class DriverProfile:
    name: str
    missing: frozenset[str] = frozenset()  # C symbols this driver does not have
    not_supported: frozenset[str] = frozenset()  # symbols it has, answering NOT_SUPPORTED on every GPU
    per_process_memory: bool = True  # False: usedGpuMemory is NVML_VALUE_NOT_AVAILABLE (MIG, WDDM)


CURRENT = DriverProfile("current")
OLD_DRIVER = DriverProfile(
    "old driver (before 510)",
    not_supported=frozenset({"nvmlDeviceGetTotalEnergyConsumption"}),
    missing=frozenset(
        {
            "nvmlDeviceGetMemoryInfo_v2",
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetComputeRunningProcesses_v3",
            "nvmlDeviceGetComputeRunningProcesses_v2",
            "nvmlGpmQueryDeviceSupport",
            "nvmlGpmSampleAlloc",
            "nvmlGpmSampleGet",
            "nvmlGpmSampleFree",
            "nvmlGpmMetricsGet",
        }
    ),
)
MIG = DriverProfile(
    "MIG enabled",
    not_supported=frozenset({"nvmlDeviceGetUtilizationRates", "nvmlGpmQueryDeviceSupport"}),
    per_process_memory=False,
)


def _value(argument: Any) -> Any:
    return getattr(argument, "value", argument)


def _target(reference: Any) -> Any:
    """What a byref() points at."""
    return reference._obj


def _set_pointer(pointer: Any, number: int) -> None:
    """Writes a small id into an opaque NVML handle, which only this library ever reads back."""
    ctypes.c_void_p.from_address(ctypes.addressof(pointer)).value = number


def _pointer_id(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


class _FakeLibnvidiaMl:
    """The C library's surface: attribute names are symbols; a symbol the profile lacks is absent."""

    def __init__(self, standin: NvmlHardwareStandIn) -> None:
        self._standin = standin

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("nvml"):
            standin = object.__getattribute__(self, "_standin")
            if name in standin.profile.missing:
                raise AttributeError(name)  # as ctypes says for an undefined symbol
            function = getattr(standin, "c_" + name, None)
            if function is None:
                raise AttributeError(name)
            return function
        return object.__getattribute__(self, name)


class NvmlHardwareStandIn:
    """Install it into the real pynvml with `with standin.installed() as pynvml: ...`, or hand
    `standin.library()` to the exporter, which installs it the first time NVML is initialised."""

    def __init__(
        self,
        gpus: list[StandInGpu],
        profile: DriverProfile = CURRENT,
        driver_missing: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gpus = gpus
        self.profile = profile
        self.driver_missing = driver_missing
        self.clock = clock
        for gpu in gpus:
            if gpu.energy_at is None:
                gpu.energy_at = clock()  # the driver has been up since the stand-in was made
        self.xid_events: queue.Queue[tuple[int, int]] = queue.Queue()  # (gpu index, xid)
        self.registered: set[int] = set()
        self.calls = 0
        self.call_delay_s = 0.0  # every device call takes this long
        self.timeouts: set[str] = set()  # C functions answering NVML_ERROR_TIMEOUT
        self.hang = threading.Event()  # set it, and every device call blocks until release is set
        self.release = threading.Event()
        self._initialised = 0
        self._lock = threading.Lock()
        self._next_id = 1000
        self._samples: dict[int, tuple[int, float] | None] = {}  # live GPM sample id -> (gpu, when) once taken
        self._event_sets: set[int] = set()

    # -- installation into the real pynvml ---------------------------------------------------------

    def install(self) -> ModuleType:
        pynvml.nvmlLib = _FakeLibnvidiaMl(self)
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlLib_refcount = 0
        return pynvml

    @staticmethod
    def uninstall() -> None:
        pynvml.nvmlLib = None
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlLib_refcount = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[ModuleType]:
        try:
            yield self.install()
        finally:
            self.uninstall()

    def library(self) -> ModuleType:
        """The real pynvml, over this stand-in: what the exporter takes as its `nvml_library`."""
        return self.install()

    @property
    def live_gpm_samples(self) -> int:
        with self._lock:
            return len(self._samples)

    # -- power and energy over the stand-in's clock --------------------------------------------------

    def _energy_now(self, gpu: StandInGpu) -> float:
        """The counter brought up to now: the current draw times the time since it was last settled."""
        with self._lock:
            now = self.clock()
            if gpu.energy_at is not None and now > gpu.energy_at:
                gpu.energy_mj += gpu.power_mw * (now - gpu.energy_at)  # mW x s = mJ
            gpu.energy_at = now
            return gpu.energy_mj

    def set_power(self, index: int, milliwatts: int) -> None:
        """A new draw from now on; the energy until now was drawn at the old one."""
        gpu = self.gpus[index]
        self._energy_now(gpu)
        gpu.power_mw = milliwatts

    def reload_driver(self) -> None:
        """What a driver reload does to the energy counters: each starts again from 0, now."""
        with self._lock:
            now = self.clock()
            for gpu in self.gpus:
                gpu.energy_mj, gpu.energy_at = 0.0, now

    # -- plumbing ----------------------------------------------------------------------------------

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _device(self, handle: Any, function: str) -> StandInGpu | int:
        """The GPU a handle names, or the return code the call must give instead."""
        self.calls += 1
        if self.hang.is_set():
            self.release.wait()
        if self.call_delay_s:
            time.sleep(self.call_delay_s)
        if not self._initialised:
            return pynvml.NVML_ERROR_UNINITIALIZED
        index = _pointer_id(handle) - 1
        if not 0 <= index < len(self.gpus):
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        gpu = self.gpus[index]
        if gpu.lost:
            return pynvml.NVML_ERROR_GPU_IS_LOST
        if function in self.timeouts:
            return pynvml.NVML_ERROR_TIMEOUT
        if function in gpu.failing:
            return gpu.failing[function]
        if function in gpu.unsupported or function in self.profile.not_supported:
            return pynvml.NVML_ERROR_NOT_SUPPORTED
        return gpu

    # -- the C API: system -------------------------------------------------------------------------

    def c_nvmlInitWithFlags(self, flags: Any) -> int:
        if self.driver_missing:
            return pynvml.NVML_ERROR_DRIVER_NOT_LOADED  # the library is there, the kernel module is not
        self._initialised += 1
        return SUCCESS

    def c_nvmlInit_v2(self) -> int:
        return self.c_nvmlInitWithFlags(0)

    def c_nvmlShutdown(self) -> int:
        if not self._initialised:
            return pynvml.NVML_ERROR_UNINITIALIZED
        self._initialised -= 1
        return SUCCESS

    def c_nvmlErrorString(self, result: Any) -> bytes:
        return f"stand-in NVML error {_value(result)}".encode()

    def c_nvmlSystemGetDriverVersion(self, buffer: Any, length: Any) -> int:
        buffer.value = b"470.82.01" if self.profile is OLD_DRIVER else b"570.86.15"
        return SUCCESS

    def c_nvmlSystemGetCudaDriverVersion(self, version: Any) -> int:
        _target(version).value = 11040 if self.profile is OLD_DRIVER else 12080
        return SUCCESS

    def c_nvmlSystemGetNVMLVersion(self, buffer: Any, length: Any) -> int:
        buffer.value = b"11.470.82.01" if self.profile is OLD_DRIVER else b"12.570.86.15"
        return SUCCESS

    def c_nvmlDeviceGetCount_v2(self, count: Any) -> int:
        if not self._initialised:
            return pynvml.NVML_ERROR_UNINITIALIZED
        _target(count).value = len(self.gpus)
        return SUCCESS

    def c_nvmlDeviceGetHandleByIndex_v2(self, index: Any, device: Any) -> int:
        position = _value(index)
        if not 0 <= position < len(self.gpus):
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        if self.gpus[position].lost:
            return pynvml.NVML_ERROR_GPU_IS_LOST
        _set_pointer(_target(device), position + 1)
        return SUCCESS

    # -- identity ----------------------------------------------------------------------------------

    def c_nvmlDeviceGetName(self, handle: Any, buffer: Any, length: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetName")
        if isinstance(gpu, int):
            return gpu
        buffer.value = gpu.name.encode()
        return SUCCESS

    def c_nvmlDeviceGetUUID(self, handle: Any, buffer: Any, length: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetUUID")
        if isinstance(gpu, int):
            return gpu
        buffer.value = gpu.uuid.encode()
        return SUCCESS

    def c_nvmlDeviceGetPciInfo_v3(self, handle: Any, info: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetPciInfo_v3")
        if isinstance(gpu, int):
            return gpu
        _target(info).busId = gpu.pci_bus_id.encode()
        return SUCCESS

    def c_nvmlDeviceGetMinorNumber(self, handle: Any, minor: Any) -> int:
        return self._fill(handle, "nvmlDeviceGetMinorNumber", minor, lambda gpu: gpu.minor)

    # -- simple readings ---------------------------------------------------------------------------

    def _fill(self, handle: Any, function: str, out: Any, read: Any) -> int:
        gpu = self._device(handle, function)
        if isinstance(gpu, int):
            return gpu
        value = read(gpu)
        if value is None:
            return pynvml.NVML_ERROR_NOT_SUPPORTED
        _target(out).value = value
        return SUCCESS

    def c_nvmlDeviceGetUtilizationRates(self, handle: Any, utilization: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetUtilizationRates")
        if isinstance(gpu, int):
            return gpu
        _target(utilization).gpu, _target(utilization).memory = gpu.gpu_util, gpu.memory_util
        return SUCCESS

    def c_nvmlDeviceGetMemoryInfo(self, handle: Any, memory: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetMemoryInfo")
        if isinstance(gpu, int):
            return gpu
        struct = _target(memory)
        struct.total = gpu.memory_total_mib * MIB
        struct.used = (gpu.memory_used_mib + gpu.memory_reserved_mib) * MIB  # v1 counts reserved as used
        struct.free = struct.total - struct.used
        return SUCCESS

    def c_nvmlDeviceGetMemoryInfo_v2(self, handle: Any, memory: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetMemoryInfo_v2")
        if isinstance(gpu, int):
            return gpu
        struct = _target(memory)
        if struct.version != pynvml.nvmlMemory_v2:
            return pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
        struct.total = gpu.memory_total_mib * MIB
        struct.reserved = gpu.memory_reserved_mib * MIB
        struct.used = gpu.memory_used_mib * MIB
        struct.free = struct.total - struct.reserved - struct.used
        return SUCCESS

    def c_nvmlDeviceGetPowerUsage(self, handle: Any, watts: Any) -> int:
        return self._fill(handle, "nvmlDeviceGetPowerUsage", watts, lambda gpu: gpu.power_mw)

    def c_nvmlDeviceGetEnforcedPowerLimit(self, handle: Any, limit: Any) -> int:
        return self._fill(handle, "nvmlDeviceGetEnforcedPowerLimit", limit, lambda gpu: gpu.power_limit_mw)

    def c_nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, energy: Any) -> int:
        if not isinstance(_target(energy), ctypes.c_uint64):
            return pynvml.NVML_ERROR_INVALID_ARGUMENT  # the real one writes an unsigned long long
        return self._fill(handle, "nvmlDeviceGetTotalEnergyConsumption", energy, lambda gpu: int(self._energy_now(gpu)))

    def c_nvmlDeviceGetTemperature(self, handle: Any, sensor: Any, temperature: Any) -> int:
        if _value(sensor) != pynvml.NVML_TEMPERATURE_GPU:
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        return self._fill(handle, "nvmlDeviceGetTemperature", temperature, lambda gpu: gpu.temperature_c)

    def c_nvmlDeviceGetClockInfo(self, handle: Any, clock: Any, mhz: Any) -> int:
        kind = _value(clock)
        return self._fill(
            handle,
            "nvmlDeviceGetClockInfo",
            mhz,
            lambda gpu: gpu.sm_clock_mhz if kind == pynvml.NVML_CLOCK_SM else gpu.memory_clock_mhz,
        )

    def _codec(self, handle: Any, function: str, utilization: Any, period: Any) -> int:
        gpu = self._device(handle, function)
        if isinstance(gpu, int):
            return gpu
        _target(utilization).value, _target(period).value = 0, 167_000
        return SUCCESS

    def c_nvmlDeviceGetEncoderUtilization(self, handle: Any, utilization: Any, period: Any) -> int:
        return self._codec(handle, "nvmlDeviceGetEncoderUtilization", utilization, period)

    def c_nvmlDeviceGetDecoderUtilization(self, handle: Any, utilization: Any, period: Any) -> int:
        return self._codec(handle, "nvmlDeviceGetDecoderUtilization", utilization, period)

    def c_nvmlDeviceGetPcieReplayCounter(self, handle: Any, counter: Any) -> int:
        return self._fill(handle, "nvmlDeviceGetPcieReplayCounter", counter, lambda gpu: 7)

    def c_nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any, reasons: Any) -> int:
        return self._fill(
            handle, "nvmlDeviceGetCurrentClocksEventReasons", reasons, lambda gpu: gpu.clock_event_reasons
        )

    def c_nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any, reasons: Any) -> int:
        return self._fill(
            handle, "nvmlDeviceGetCurrentClocksThrottleReasons", reasons, lambda gpu: gpu.clock_event_reasons
        )

    def c_nvmlDeviceGetViolationStatus(self, handle: Any, policy: Any, violation: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetViolationStatus")
        if isinstance(gpu, int):
            return gpu
        power = _value(policy) == pynvml.NVML_PERF_POLICY_POWER
        _target(violation).referenceTime = 10**12
        _target(violation).violationTime = gpu.power_violation_ns if power else gpu.thermal_violation_ns
        return SUCCESS

    def c_nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: Any, counter: Any, count: Any) -> int:
        key = (_value(error_type), _value(counter))
        return self._fill(handle, "nvmlDeviceGetTotalEccErrors", count, lambda gpu: gpu.ecc.get(key))

    def c_nvmlDeviceGetRemappedRows(
        self, handle: Any, corrected: Any, uncorrected: Any, pending: Any, failed: Any
    ) -> int:
        gpu = self._device(handle, "nvmlDeviceGetRemappedRows")
        if isinstance(gpu, int):
            return gpu
        if gpu.remapped_rows is None:
            return pynvml.NVML_ERROR_NOT_SUPPORTED
        for out, value in zip((corrected, uncorrected, pending, failed), gpu.remapped_rows, strict=True):
            _target(out).value = value
        return SUCCESS

    def c_nvmlDeviceGetNvLinkState(self, handle: Any, link: Any, active: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetNvLinkState")
        if isinstance(gpu, int):
            return gpu
        if gpu.nvlink_states is None:
            return pynvml.NVML_ERROR_NOT_SUPPORTED
        if _value(link) >= len(gpu.nvlink_states):
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        _target(active).value = gpu.nvlink_states[_value(link)]
        return SUCCESS

    def c_nvmlDeviceGetNvLinkErrorCounter(self, handle: Any, link: Any, counter: Any, value: Any) -> int:
        return self._fill(handle, "nvmlDeviceGetNvLinkErrorCounter", value, lambda gpu: 1)

    def c_nvmlDeviceGetFieldValues(self, handle: Any, count: Any, values: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceGetFieldValues")
        if isinstance(gpu, int):
            return gpu
        array = _target(values)
        for position in range(_value(count)):
            entry = array[position]
            if entry.fieldId == pynvml.NVML_FI_DEV_MEMORY_TEMP and gpu.memory_temperature_c is not None:
                entry.nvmlReturn, entry.valueType = SUCCESS, pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                entry.value.uiVal = gpu.memory_temperature_c
            else:
                entry.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return SUCCESS

    # -- processes: the v3, v2 and v1 structs ------------------------------------------------------

    def _processes(self, handle: Any, function: str, count: Any, infos: Any) -> int:
        gpu = self._device(handle, function)
        if isinstance(gpu, int):
            return gpu
        wanted = len(gpu.processes)
        capacity = _target(count).value
        _target(count).value = wanted
        if wanted == 0:
            return SUCCESS
        if infos is None or capacity < wanted:
            return pynvml.NVML_ERROR_INSUFFICIENT_SIZE
        for position, (pid, used) in enumerate(gpu.processes):
            infos[position].pid = pid
            per_process = used is not None and self.profile.per_process_memory
            infos[position].usedGpuMemory = used if per_process else pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
        return SUCCESS

    def c_nvmlDeviceGetComputeRunningProcesses_v3(self, handle: Any, count: Any, infos: Any) -> int:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v3", count, infos)

    def c_nvmlDeviceGetComputeRunningProcesses_v2(self, handle: Any, count: Any, infos: Any) -> int:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses_v2", count, infos)

    def c_nvmlDeviceGetComputeRunningProcesses(self, handle: Any, count: Any, infos: Any) -> int:
        return self._processes(handle, "nvmlDeviceGetComputeRunningProcesses", count, infos)

    # -- XID events --------------------------------------------------------------------------------

    def c_nvmlEventSetCreate(self, event_set: Any) -> int:
        identifier = self._new_id()
        with self._lock:
            self._event_sets.add(identifier)
        _set_pointer(_target(event_set), identifier)
        return SUCCESS

    def c_nvmlDeviceRegisterEvents(self, handle: Any, event_types: Any, event_set: Any) -> int:
        gpu = self._device(handle, "nvmlDeviceRegisterEvents")
        if isinstance(gpu, int):
            return gpu
        if _pointer_id(event_set) not in self._event_sets:
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        self.registered.add(self.gpus.index(gpu))
        return SUCCESS

    def c_nvmlEventSetWait_v2(self, event_set: Any, data: Any, timeout_ms: Any) -> int:
        if _pointer_id(event_set) not in self._event_sets:
            return pynvml.NVML_ERROR_INVALID_ARGUMENT
        try:
            index, xid = self.xid_events.get(timeout=_value(timeout_ms) / 1000)
        except queue.Empty:
            return pynvml.NVML_ERROR_TIMEOUT
        event = _target(data)
        device_offset = type(event).device.offset
        ctypes.c_void_p.from_address(ctypes.addressof(event) + device_offset).value = index + 1
        event.eventType = pynvml.nvmlEventTypeXidCriticalError
        event.eventData = xid
        return SUCCESS

    def c_nvmlEventSetFree(self, event_set: Any) -> int:
        with self._lock:
            if _pointer_id(event_set) not in self._event_sets:
                return pynvml.NVML_ERROR_INVALID_ARGUMENT
            self._event_sets.discard(_pointer_id(event_set))
        return SUCCESS

    # -- GPM: samples tracked per handle -----------------------------------------------------------

    def c_nvmlGpmQueryDeviceSupport(self, handle: Any, support: Any) -> int:
        gpu = self._device(handle, "nvmlGpmQueryDeviceSupport")
        if isinstance(gpu, int):
            return gpu
        _target(support).isSupportedDevice = 1 if gpu.gpm is not None else 0
        return SUCCESS

    def c_nvmlGpmSampleAlloc(self, sample: Any) -> int:
        identifier = self._new_id()
        with self._lock:
            self._samples[identifier] = None
        _set_pointer(_target(sample), identifier)
        return SUCCESS

    def c_nvmlGpmSampleFree(self, sample: Any) -> int:
        with self._lock:
            if self._samples.pop(_pointer_id(sample), "freed") == "freed":
                return pynvml.NVML_ERROR_INVALID_ARGUMENT
        return SUCCESS

    def c_nvmlGpmSampleGet(self, handle: Any, sample: Any) -> int:
        gpu = self._device(handle, "nvmlGpmSampleGet")
        if isinstance(gpu, int):
            return gpu
        identifier = _pointer_id(sample)
        with self._lock:
            if identifier not in self._samples:
                return pynvml.NVML_ERROR_INVALID_ARGUMENT
            if gpu.gpm is None:
                return pynvml.NVML_ERROR_NOT_SUPPORTED
            self._samples[identifier] = (self.gpus.index(gpu), time.monotonic())
        return SUCCESS

    def c_nvmlGpmMetricsGet(self, request: Any) -> int:
        struct = _target(request)
        with self._lock:
            first = self._samples.get(_pointer_id(struct.sample1))
            second = self._samples.get(_pointer_id(struct.sample2))
        if first is None or second is None or first[0] != second[0] or second[1] <= first[1]:
            return pynvml.NVML_ERROR_INVALID_ARGUMENT  # freed, never taken, of two GPUs, or out of order
        gpm = self.gpus[first[0]].gpm or {}
        for position in range(struct.numMetrics):
            metric = struct.metrics[position]
            if metric.metricId in gpm:
                metric.nvmlReturn, metric.value = SUCCESS, gpm[metric.metricId]
            else:
                metric.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return SUCCESS


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
                pynvml.NVML_GPM_METRIC_SM_UTIL: 80.0,
                pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL: 45.0,
                pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL: 60.0,
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

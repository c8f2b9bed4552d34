"""A thin typed layer over NVML (nvidia-ml-py, imported as pynvml), where every NVML error and every
struct version is handled, as nvitop's libnvml does.

Outcomes that are not errors here:
- NVML_ERROR_NOT_SUPPORTED: the GPU lacks the field. The call returns None and the metric is absent.
- NVML_ERROR_FUNCTION_NOT_FOUND: the driver is older than the call. Also None, except where an older
  call can answer instead: memory (v2, then v1) and compute processes (v3, v2, then v1), below.
- NVML_ERROR_GPU_IS_LOST: the GPU fell off the bus. GpuLost is raised so the caller reports that GPU
  as lost and carries on with the others.
pynvml's unversioned wrappers raise NVMLLibraryMismatchError, which is not an NVMLError, when the
driver lacks the versioned symbol they call; the versioned calls below never meet it.
The library is injected, so tests can hand in the real pynvml over a stand-in for the hardware.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class NvmlUnavailable(Exception):
    """NVML cannot be used on this machine (no library, no driver, no GPU)."""


class GpuLost(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(f"GPU {index} is lost (fell off the bus)")
        self.index = index


@dataclass(frozen=True)
class GpuIdentity:
    """What labels a GPU, read once while it still answers."""

    index: int
    uuid: str
    name: str
    pci_bus_id: str
    minor: int | None

    @property
    def device(self) -> str:
        return f"nvidia{self.minor if self.minor is not None else self.index}"


class _ProcessInfoV1(ctypes.Structure):
    """nvmlProcessInfo_v1_t, which pynvml no longer defines: drivers before about 510 fill only this."""

    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]


def _processes_v1(lib: Any, handle: Any) -> list[Any]:
    function = lib._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses")
    count = ctypes.c_uint(0)
    code = function(handle, ctypes.byref(count), None)
    if code == lib.NVML_SUCCESS:
        return []
    if code != lib.NVML_ERROR_INSUFFICIENT_SIZE:
        raise lib.NVMLError(code)
    count.value = count.value * 2 + 5  # room for processes started meanwhile
    infos = (_ProcessInfoV1 * count.value)()
    code = function(handle, ctypes.byref(count), infos)
    if code != lib.NVML_SUCCESS:
        raise lib.NVMLError(code)
    unknown = lib.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
    return [
        SimpleNamespace(pid=info.pid, usedGpuMemory=None if info.usedGpuMemory == unknown else info.usedGpuMemory)
        for info in infos[: count.value]
    ]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class Nvml:
    def __init__(self, library: ModuleType | None = None) -> None:
        self._library = library
        self.lib: Any = None

    def init(self) -> None:
        """Loads and initialises NVML, or raises NvmlUnavailable with the reason."""
        try:
            lib = self._library
            if lib is None:
                import pynvml as lib
            lib.nvmlInit()
        except ImportError as error:
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from None
        except Exception as error:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
            raise NvmlUnavailable(_text(error) or type(error).__name__) from None
        self.lib = lib

    def shutdown(self) -> None:
        if self.lib is not None:
            with contextlib.suppress(Exception):  # shutting down anyway
                self.lib.nvmlShutdown()
            self.lib = None

    def _is(self, error: Exception, code_name: str) -> bool:
        code = getattr(self.lib, code_name, None)
        return code is not None and getattr(error, "value", None) == code

    def call(self, index: int, function: Callable[..., T], *args: Any) -> T | None:
        """Calls `function`; None when this GPU or driver lacks it; GpuLost when the GPU is gone."""
        try:
            return function(*args)
        except self.lib.NVMLError as error:
            # FUNCTION_NOT_FOUND: a driver older than the call (e.g. clock-event reasons before 535).
            if self._is(error, "NVML_ERROR_NOT_SUPPORTED") or self._is(error, "NVML_ERROR_FUNCTION_NOT_FOUND"):
                return None
            if self._is(error, "NVML_ERROR_GPU_IS_LOST"):
                raise GpuLost(index) from None
            raise

    def _is_missing(self, error: Exception) -> bool:
        return self._is(error, "NVML_ERROR_FUNCTION_NOT_FOUND") or isinstance(
            error, getattr(self.lib, "NVMLLibraryMismatchError", ())
        )

    def _first_present(self, index: int, calls: list[Callable[[], T]]) -> T | None:
        """The first call the driver has; None when it has none of them (or the GPU lacks the field)."""
        for call in calls:
            try:
                return call()
            except Exception as error:
                if self._is_missing(error):
                    continue
                if isinstance(error, self.lib.NVMLError):
                    if self._is(error, "NVML_ERROR_NOT_SUPPORTED"):
                        return None
                    if self._is(error, "NVML_ERROR_GPU_IS_LOST"):
                        raise GpuLost(index) from None
                raise
        return None

    def memory(self, index: int, handle: Any) -> Any:
        """The v2 struct (with `reserved`) where the driver has it (about 510 and later), else v1."""
        lib = self.lib
        calls: list[Callable[[], Any]] = []
        version = getattr(lib, "nvmlMemory_v2", None)
        if version is not None:
            calls.append(lambda: lib.nvmlDeviceGetMemoryInfo(handle, version))
        calls.append(lambda: lib.nvmlDeviceGetMemoryInfo(handle))
        return self._first_present(index, calls)

    def compute_processes(self, index: int, handle: Any) -> list[Any] | None:
        """Compute processes through the newest struct this driver has: v3, v2, then v1. A process whose
        memory NVML cannot tell (WDDM, some MIG modes) has usedGpuMemory None."""
        lib = self.lib
        calls: list[Callable[[], Any]] = [
            lambda: lib.nvmlDeviceGetComputeRunningProcesses_v3(handle),
            lambda: lib.nvmlDeviceGetComputeRunningProcesses_v2(handle),
            lambda: _processes_v1(lib, handle),
        ]
        return self._first_present(index, calls)

    def is_timeout(self, error: Exception) -> bool:
        return self._is(error, "NVML_ERROR_TIMEOUT")

    # -- system ----------------------------------------------------------------------------------

    def driver_versions(self) -> dict[str, str]:
        lib = self.lib
        versions = {"driver_version": _text(lib.nvmlSystemGetDriverVersion())}
        try:
            cuda = int(lib.nvmlSystemGetCudaDriverVersion())
            versions["cuda_version"] = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        except lib.NVMLError:
            versions["cuda_version"] = "unknown"
        try:
            versions["nvml_version"] = _text(lib.nvmlSystemGetNVMLVersion())
        except lib.NVMLError:
            versions["nvml_version"] = "unknown"
        return versions

    def device_count(self) -> int:
        return int(self.lib.nvmlDeviceGetCount())

    def handle(self, index: int) -> Any:
        try:
            return self.lib.nvmlDeviceGetHandleByIndex(index)
        except self.lib.NVMLError as error:
            if self._is(error, "NVML_ERROR_GPU_IS_LOST"):
                raise GpuLost(index) from None
            raise

    def identity(self, index: int, handle: Any) -> GpuIdentity:
        lib = self.lib
        pci = self.call(index, lib.nvmlDeviceGetPciInfo, handle)
        minor = self.call(index, lib.nvmlDeviceGetMinorNumber, handle)
        return GpuIdentity(
            index=index,
            uuid=_text(self.call(index, lib.nvmlDeviceGetUUID, handle) or f"unknown-{index}"),
            name=_text(self.call(index, lib.nvmlDeviceGetName, handle) or "unknown"),
            pci_bus_id=_text(pci.busId) if pci is not None else "",
            minor=int(minor) if minor is not None else None,
        )

"""Per-GPU device fields, named, scaled and labelled as dcgm-exporter does.

Where DCGM types a field as a counter, it is still exposed as a gauge here: prometheus_client would
append `_total` to a counter's name, and the point of DCGM's names is that existing dashboards and
alerts find them unchanged. rate() works the same on either type.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from observability.exporter.collector import counter, gauge
from observability.exporter.gpu_energy import Counter, EnergyMeter, EnergyReading
from observability.exporter.gpu_reader import GpuReader
from observability.exporter.labels import GPU_LABELS, gpu_label_values
from observability.exporter.nvml_api import GpuLost
from observability.exporter.nvml_session import NvmlSession

log = logging.getLogger(__name__)

MIB = 1024 * 1024

# NVML clock-event reason bits (nvmlClocksEventReason*), decoded so alerts need no bit arithmetic.
CLOCK_EVENT_REASONS = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}


@dataclass(frozen=True)
class Field:
    name: str
    documentation: str
    read: Callable[[GpuReader], float | None]


def _memory(gpu: GpuReader) -> Any:
    return gpu.answer("memory", lambda: gpu.nvml.memory(gpu.index, gpu.handle))  # v2, else v1 (no "reserved")


def _memory_part(part: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        info = _memory(gpu)
        value = None if info is None else getattr(info, part, None)
        return None if value is None else value / MIB

    return read


def _utilization(part: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        rates = gpu.call("nvmlDeviceGetUtilizationRates")
        return None if rates is None else float(getattr(rates, part))

    return read


def _codec(function_name: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        result = gpu.call(function_name)  # (utilization %, sampling period us)
        return None if result is None else float(result[0])

    return read


def _simple(function_name: str, *constants: str, factor: float = 1.0) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        args = [gpu.constant(name) for name in constants]
        if any(arg is None for arg in args):
            return None
        value = gpu.call(function_name, *args)
        return None if value is None else float(value) * factor

    return read


# nvmlValue_t members by NVML_VALUE_TYPE_*: double, uint, ulong, ulonglong, slonglong, sint, ushort.
_VALUE_MEMBERS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


def _field_value(field_id_name: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        field_id = gpu.constant(field_id_name)
        if field_id is None:
            return None
        values = gpu.call("nvmlDeviceGetFieldValues", (field_id,))
        if not values or values[0].nvmlReturn != 0:
            return None
        kind = int(values[0].valueType)
        return float(getattr(values[0].value, _VALUE_MEMBERS[kind])) if 0 <= kind < len(_VALUE_MEMBERS) else None

    return read


def _violation_us(policy: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        status = gpu.call("nvmlDeviceGetViolationStatus", gpu.constant(policy))
        return None if status is None else status.violationTime / 1000.0  # ns -> us, as DCGM reports it

    return read


def _remapped(position: int) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        rows = gpu.call("nvmlDeviceGetRemappedRows")  # (correctable, uncorrectable, pending, failed)
        return None if rows is None else float(rows[position])

    return read


def _clock_event_reasons(gpu: GpuReader) -> float | None:
    value = gpu.call("nvmlDeviceGetCurrentClocksEventReasons")
    if value is None:
        value = gpu.call("nvmlDeviceGetCurrentClocksThrottleReasons")  # the pre-535 name
    return None if value is None else float(int(value))


def _nvlink_states(gpu: GpuReader) -> list[int]:
    """Up/down per link, stopping at the first link this GPU does not have."""
    states: list[int] = []
    for link in range(gpu.constant("NVML_NVLINK_MAX_LINKS") or 18):
        try:
            state = gpu.call("nvmlDeviceGetNvLinkState", link)
        except gpu.lib.NVMLError:
            break
        if state is None:
            break
        states.append(int(state))
    return states


def _nvlink_errors(counter: str) -> Callable[[GpuReader], float | None]:
    def read(gpu: GpuReader) -> float | None:
        states = _nvlink_states(gpu)
        if not states:
            return None
        total = 0
        for link, up in enumerate(states):
            if up:
                total += int(gpu.call("nvmlDeviceGetNvLinkErrorCounter", link, gpu.constant(counter)) or 0)
        return float(total)

    return read


def _nvlink_active(gpu: GpuReader) -> float | None:
    states = _nvlink_states(gpu)
    return float(sum(states)) if states else None


FIELDS: tuple[Field, ...] = (
    Field("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", _utilization("gpu")),
    Field("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory copy utilization (in %).", _utilization("memory")),
    Field("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).", _memory_part("total")),
    Field("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", _memory_part("used")),
    Field("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", _memory_part("free")),
    Field("DCGM_FI_DEV_FB_RESERVED", "Framebuffer memory reserved by the driver (in MiB).", _memory_part("reserved")),
    Field("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", _simple("nvmlDeviceGetPowerUsage", factor=1e-3)),
    Field(
        "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
        "Enforced power limit (in W).",
        _simple("nvmlDeviceGetEnforcedPowerLimit", factor=1e-3),
    ),
    Field(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "Total energy consumption since the driver loaded (in mJ).",
        _simple("nvmlDeviceGetTotalEnergyConsumption"),
    ),
    Field(
        "DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", _simple("nvmlDeviceGetTemperature", "NVML_TEMPERATURE_GPU")
    ),
    Field("DCGM_FI_DEV_MEMORY_TEMP", "Memory temperature (in C).", _field_value("NVML_FI_DEV_MEMORY_TEMP")),
    Field("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", _simple("nvmlDeviceGetClockInfo", "NVML_CLOCK_SM")),
    Field(
        "DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", _simple("nvmlDeviceGetClockInfo", "NVML_CLOCK_MEM")
    ),
    Field("DCGM_FI_DEV_ENC_UTIL", "Encoder utilization (in %).", _codec("nvmlDeviceGetEncoderUtilization")),
    Field("DCGM_FI_DEV_DEC_UTIL", "Decoder utilization (in %).", _codec("nvmlDeviceGetDecoderUtilization")),
    Field(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "Total number of PCIe retries.", _simple("nvmlDeviceGetPcieReplayCounter")
    ),
    Field(
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "Bitmask of the reasons clocks are held down (NVML values).",
        _clock_event_reasons,
    ),
    Field(
        "DCGM_FI_DEV_POWER_VIOLATION",
        "Throttling duration due to power constraints (in us).",
        _violation_us("NVML_PERF_POLICY_POWER"),
    ),
    Field(
        "DCGM_FI_DEV_THERMAL_VIOLATION",
        "Throttling duration due to thermal constraints (in us).",
        _violation_us("NVML_PERF_POLICY_THERMAL"),
    ),
    Field(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "Single-bit volatile ECC errors.",
        _simple("nvmlDeviceGetTotalEccErrors", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
    ),
    Field(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Double-bit volatile ECC errors.",
        _simple("nvmlDeviceGetTotalEccErrors", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
    ),
    Field(
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "Single-bit persistent ECC errors.",
        _simple("nvmlDeviceGetTotalEccErrors", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_AGGREGATE_ECC"),
    ),
    Field(
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "Double-bit persistent ECC errors.",
        _simple("nvmlDeviceGetTotalEccErrors", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_AGGREGATE_ECC"),
    ),
    Field("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Rows remapped for correctable errors.", _remapped(0)),
    Field("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Rows remapped for uncorrectable errors.", _remapped(1)),
    Field("DCGM_FI_DEV_ROW_REMAP_PENDING", "Whether a row remap is pending (a GPU reset applies it).", _remapped(2)),
    Field("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed.", _remapped(3)),
    Field(
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        "NVLink flow-control CRC errors, all links.",
        _nvlink_errors("NVML_NVLINK_ERROR_DL_CRC_FLIT"),
    ),
    Field(
        "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
        "NVLink data CRC errors, all links.",
        _nvlink_errors("NVML_NVLINK_ERROR_DL_CRC_DATA"),
    ),
    Field(
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        "NVLink retries, all links.",
        _nvlink_errors("NVML_NVLINK_ERROR_DL_REPLAY"),
    ),
    Field(
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        "NVLink recovery errors, all links.",
        _nvlink_errors("NVML_NVLINK_ERROR_DL_RECOVERY"),
    ),
    Field("swm_gpu_nvlink_links_active", "NVLink links that are up.", _nvlink_active),
)


ENERGY_FIELD = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
POWER_FIELD = "DCGM_FI_DEV_POWER_USAGE"


class GpuCollector:
    name = "gpu"

    def __init__(self, session: NvmlSession, hostname: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._hostname = hostname
        self._clock = clock
        self._energy = EnergyMeter()
        self._logged: set[tuple[int, str]] = set()

    def _read(self, field: Field, reader: GpuReader, failed: set[str]) -> float | None:
        """One field; an unexpected NVML error leaves only that field of that GPU out (logged once)."""
        try:
            return field.read(reader)
        except GpuLost:
            raise
        except reader.lib.NVMLError as error:
            failed.add(field.name)
            if (reader.index, field.name) not in self._logged:
                self._logged.add((reader.index, field.name))
                log.warning("GPU %d: %s unavailable: %s", reader.index, field.name, error)
            return None

    def _energy_of(self, uuid: str, values: dict[str, float], failed: set[str]) -> EnergyReading | None:
        counter_mj: float | Counter = values.get(ENERGY_FIELD, Counter.UNKNOWN)
        if ENERGY_FIELD not in values and ENERGY_FIELD not in failed:
            counter_mj = Counter.MISSING  # NVML answered NOT_SUPPORTED or FUNCTION_NOT_FOUND
        return self._energy.read(uuid, counter_mj, values.get(POWER_FIELD), self._clock())

    def collect(self) -> list[Metric]:
        rows: dict[str, list[tuple[list[str], float]]] = defaultdict(list)
        reasons: list[tuple[list[str], float]] = []
        energy: list[tuple[list[str], float]] = []
        energy_sources: list[tuple[list[str], float]] = []
        answered: set[str] = set()
        for gpu in self._session.gpus():
            labels = gpu_label_values(gpu.identity, self._hostname)
            values: dict[str, float] = {}
            failed: set[str] = set()
            reader = GpuReader(self._session.nvml, gpu.identity.index, gpu.handle)
            try:
                for field in FIELDS:
                    value = self._read(field, reader, failed)
                    if value is not None:
                        values[field.name] = float(value)
            except GpuLost:
                self._session.mark_lost(gpu.identity.index)
                continue  # report nothing half-read for a GPU that vanished mid-way
            self._session.mark_answering(gpu.identity.index)
            for name, value in values.items():
                rows[name].append((labels, value))
            answered.add(gpu.identity.uuid)
            reading = self._energy_of(gpu.identity.uuid, values, failed)
            if reading is not None:
                energy.append((labels, reading.joules))
                energy_sources.append(([*labels, reading.source], 1.0))
            bits = values.get("DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
            if bits is not None:
                for reason, bit in CLOCK_EVENT_REASONS.items():
                    reasons.append(([*labels, reason], 1.0 if int(bits) & bit else 0.0))

        self._energy.answered_only(answered)
        families = [
            gauge(field.name, field.documentation, GPU_LABELS, rows[field.name])
            for field in FIELDS
            if rows.get(field.name)
        ]
        if reasons:
            families.append(
                gauge(
                    "swm_gpu_clocks_event_reason",
                    "1 while this reason holds the clocks down.",
                    [*GPU_LABELS, "reason"],
                    reasons,
                )
            )
        if energy:
            families.append(
                counter(
                    "swm_gpu_energy_joules",
                    "GPU board energy (in J): NVML's counter where the GPU has one, else integrated from power.",
                    GPU_LABELS,
                    energy,
                )
            )
            families.append(
                gauge(
                    "swm_gpu_energy_source",
                    "Where swm_gpu_energy_joules_total comes from (source: nvml or integrated); always 1.",
                    [*GPU_LABELS, "source"],
                    energy_sources,
                )
            )
        lost = [(gpu_label_values(identity, self._hostname), 1.0) for identity in self._session.lost_gpus()]
        families.append(
            gauge("swm_gpu_lost", "1 for a GPU that fell off the bus (NVML_ERROR_GPU_IS_LOST).", GPU_LABELS, lost)
        )
        return families

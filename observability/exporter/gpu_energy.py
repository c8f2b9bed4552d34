"""Each GPU's energy as one counter in joules, whichever way the GPU can tell it.

NVML's total energy counter (Volta and newer) is exact and survives exporter restarts, so it is used
wherever it answers. A GPU or driver without it (NOT_SUPPORTED, or FUNCTION_NOT_FOUND) gets a counter
integrated from the power samples of successive collections (trapezoids), which starts at 0 with the
exporter: to Prometheus' rate() that is an ordinary counter reset. NVML's own counter restarts at 0 when
the driver reloads; it is passed on as it is, for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

NVML = "nvml"
INTEGRATED = "integrated"


class Counter(Enum):
    """What NVML's energy counter said this collection, where it gave no number."""

    MISSING = "missing"  # this GPU or driver has none: integrate
    UNKNOWN = "unknown"  # the call failed this time (a timeout, an unexpected error): no new reading


@dataclass
class _Integral:
    joules: float = 0.0
    last_at: float | None = None
    last_watts: float = 0.0


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    source: str


class EnergyMeter:
    """Per GPU, by UUID (indices can change across reboots, a UUID cannot), kept between collections."""

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        self._integrals: dict[str, _Integral] = {}

    def read(self, uuid: str, counter: float | Counter, watts: float | None, now: float) -> EnergyReading | None:
        """`counter`: NVML's reading in mJ, or why there is none; `watts`: this collection's power sample
        (None without one); `now`: a monotonic time in seconds. None: nothing to report for this GPU."""
        if isinstance(counter, float | int):
            self._sources[uuid] = NVML
            return EnergyReading(float(counter) / 1000.0, NVML)
        if counter is Counter.MISSING:
            self._sources[uuid] = INTEGRATED
        if self._sources.get(uuid) != INTEGRATED:
            return None  # an NVML counter that failed once: skip the sample rather than switch sources
        integral = self._integrals.setdefault(uuid, _Integral())
        if watts is None:
            # A gap without power samples is left out, not guessed: under-count rather than invent.
            integral.last_at = None
        else:
            if integral.last_at is not None and now > integral.last_at:
                integral.joules += (integral.last_watts + watts) / 2.0 * (now - integral.last_at)
            integral.last_at, integral.last_watts = now, watts
        return EnergyReading(integral.joules, INTEGRATED)

    def answered_only(self, uuids: set[str]) -> None:
        """Ends a collection: a GPU not read in it (lost, gone) has its time until it answers again left out."""
        for uuid, integral in self._integrals.items():
            if uuid not in uuids:
                integral.last_at = None

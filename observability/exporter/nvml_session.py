"""One NVML session shared by the GPU collectors: initialised lazily, retried, and failing quietly.

Without a GPU (this machine, CI, a CPU host) NVML cannot initialise. The reason is logged once, the
collectors report nothing per GPU, and swm_nvml_up says 0. Initialisation is retried now and then,
so a driver that loads later is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from observability.exporter.nvml_api import GpuIdentity, GpuLost, Nvml, NvmlUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    identity: GpuIdentity
    handle: Any


class NvmlSession:
    def __init__(self, library: ModuleType | None = None, retry_interval_s: float = 60.0) -> None:
        self.nvml = Nvml(library)
        self._retry_interval_s = retry_interval_s
        self._lock = threading.Lock()
        self._next_attempt = 0.0
        self._logged_reason: str | None = None
        self.up = False
        self.reason = "not initialised yet"
        self._identities: dict[int, GpuIdentity] = {}
        self._lost: set[int] = set()

    def ensure(self) -> Nvml | None:
        with self._lock:
            if self.up:
                return self.nvml
            now = time.monotonic()
            if now < self._next_attempt:
                return None
            self._next_attempt = now + self._retry_interval_s
            try:
                self.nvml.init()
            except NvmlUnavailable as error:
                self.reason = str(error)
                if self._logged_reason != self.reason:
                    log.warning(
                        "NVML unavailable, GPU metrics off (host and supervisor metrics go on): %s", self.reason
                    )
                    self._logged_reason = self.reason
                return None
            self.up = True
            self.reason = ""
            log.info("NVML initialised: %s", self.nvml.driver_versions())
            return self.nvml

    def gpus(self) -> list[Gpu]:
        """The GPUs that answer now. A lost one is remembered in lost_gpus() and skipped."""
        nvml = self.ensure()
        if nvml is None:
            return []
        found: list[Gpu] = []
        for index in range(nvml.device_count()):
            try:
                handle = nvml.handle(index)
                identity = self._identities.get(index)
                if identity is None:
                    identity = nvml.identity(index, handle)
                    with self._lock:
                        self._identities[index] = identity
            except GpuLost:
                self.mark_lost(index)
                continue
            found.append(Gpu(identity, handle))
        return found

    def mark_lost(self, index: int) -> None:
        with self._lock:
            if index not in self._lost:
                log.error("GPU %d is lost (NVML_ERROR_GPU_IS_LOST); still reporting the others", index)
            self._lost.add(index)

    def mark_answering(self, index: int) -> None:
        with self._lock:
            if index in self._lost:
                log.info("GPU %d answers again", index)
            self._lost.discard(index)

    def lost_gpus(self) -> list[GpuIdentity]:
        with self._lock:
            return [
                self._identities.get(index) or GpuIdentity(index, f"unknown-{index}", "unknown", "", None)
                for index in sorted(self._lost)
            ]

    def identity_by_uuid(self, uuid: str) -> GpuIdentity | None:
        with self._lock:
            return next((identity for identity in self._identities.values() if identity.uuid == uuid), None)

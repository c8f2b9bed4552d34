"""XID errors, counted by a background event thread.

dcgm-exporter's DCGM_FI_DEV_XID_ERRORS holds only the last XID value, so a repeat of the same XID is
invisible. Here every event increments a counter per GPU and XID, with the time it was last seen. The
last value is exported too, under DCGM's name, for dashboards built on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from prometheus_client.core import Metric

from observability.exporter.collector import counter, gauge
from observability.exporter.labels import GPU_LABELS, gpu_label_values
from observability.exporter.nvml_api import GpuIdentity, GpuLost
from observability.exporter.nvml_session import NvmlSession

log = logging.getLogger(__name__)

_WAIT_MS = 1000


class XidCollector:
    name = "xid"

    def __init__(self, session: NvmlSession, hostname: str, retry_interval_s: float = 30.0) -> None:
        self._session = session
        self._hostname = hostname
        self._retry_interval_s = retry_interval_s
        self._lock = threading.Lock()
        self._watched: dict[str, GpuIdentity] = {}  # uuid -> identity, GPUs registered for XID events
        self._counts: dict[tuple[str, int], int] = defaultdict(int)
        self._last_seen: dict[tuple[str, int], float] = {}
        self._last_xid: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xid-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def record(self, uuid: str, xid: int, when: float | None = None) -> None:
        with self._lock:
            self._counts[(uuid, xid)] += 1
            self._last_seen[(uuid, xid)] = time.time() if when is None else when
            self._last_xid[uuid] = xid

    def _register(self) -> Any | None:
        nvml = self._session.ensure()
        if nvml is None:
            return None
        lib = nvml.lib
        event_set = lib.nvmlEventSetCreate()
        watched: dict[str, GpuIdentity] = {}
        for gpu in self._session.gpus():
            try:
                nvml.call(
                    gpu.identity.index,
                    lib.nvmlDeviceRegisterEvents,
                    gpu.handle,
                    lib.nvmlEventTypeXidCriticalError,
                    event_set,
                )
            except GpuLost:
                continue
            except lib.NVMLError as error:
                log.warning("GPU %d: cannot watch XID events: %s", gpu.identity.index, error)
                continue
            watched[gpu.identity.uuid] = gpu.identity
        with self._lock:
            self._watched = watched
        return event_set

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event_set = self._register()
            except Exception as error:  # noqa: BLE001 - keep the thread alive; retry later
                log.warning("cannot set up XID events: %s", error)
                event_set = None
            if event_set is None:
                self._stop.wait(self._retry_interval_s)
                continue
            self._wait_for_events(event_set)

    def _wait_for_events(self, event_set: Any) -> None:
        nvml = self._session.nvml
        lib = nvml.lib
        try:
            while not self._stop.is_set():
                try:
                    event = lib.nvmlEventSetWait_v2(event_set, _WAIT_MS)
                except lib.NVMLError as error:
                    if nvml.is_timeout(error):
                        continue
                    log.warning("XID event wait failed (%s); watching again", error)
                    self._stop.wait(self._retry_interval_s)
                    return
                if event.eventType & lib.nvmlEventTypeXidCriticalError:
                    uuid = lib.nvmlDeviceGetUUID(event.device)
                    uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
                    log.error("XID %d on GPU %s", event.eventData, uuid)
                    self.record(uuid, int(event.eventData))
        finally:
            try:
                lib.nvmlEventSetFree(event_set)
            except lib.NVMLError:
                pass

    def collect(self) -> list[Metric]:
        with self._lock:
            watched = dict(self._watched)
            counts = dict(self._counts)
            last_seen = dict(self._last_seen)
            last_xid = dict(self._last_xid)

        def labels(uuid: str) -> list[str] | None:
            identity = watched.get(uuid) or self._session.identity_by_uuid(uuid)
            return gpu_label_values(identity, self._hostname) if identity else None

        per_gpu = []
        for uuid in watched:
            total = sum(count for (gpu_uuid, _), count in counts.items() if gpu_uuid == uuid)
            per_gpu.append((labels(uuid), float(total)))
        per_xid = [([*labels(uuid), str(xid)], float(count)) for (uuid, xid), count in counts.items() if labels(uuid)]
        seen = [([*labels(uuid), str(xid)], when) for (uuid, xid), when in last_seen.items() if labels(uuid)]
        last = [(labels(uuid), float(xid)) for uuid, xid in last_xid.items() if labels(uuid)]
        return [
            # Present at 0 from the start, so increase() sees the first XID.
            counter("swm_gpu_xid_events", "XID errors on this GPU, all XIDs.", GPU_LABELS, per_gpu),
            counter("swm_gpu_xid_errors", "XID errors on this GPU, by XID.", (*GPU_LABELS, "xid"), per_xid),
            gauge(
                "swm_gpu_xid_last_seen_timestamp_seconds",
                "When this XID last happened on this GPU.",
                (*GPU_LABELS, "xid"),
                seen,
            ),
            gauge("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", GPU_LABELS, last),
        ]

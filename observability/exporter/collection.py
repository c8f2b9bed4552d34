"""Runs each collector on its own background thread and keeps its last snapshot, already rendered.

A scrape never calls a collector: it reads snapshots. So a hung NVML call stalls only the GPU
collector's thread (its last-success time then ages, which an alert watches) and never Prometheus.
Each snapshot is rendered to text on the collector's thread too, in the formats scrapers asked for,
so a scrape only concatenates bytes (see exposition.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import Metric

from observability.exporter.collector import Collector, counter, gauge
from observability.exporter.rendering import Encoder, FamilyTexts, render

log = logging.getLogger(__name__)


class Formats:
    """The exposition formats scrapers have asked for, so collections can render them ahead of time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted: dict[str, Encoder] = {}

    def want(self, content_type: str, encoder: Encoder) -> None:
        with self._lock:
            self._wanted.setdefault(content_type, encoder)

    def wanted(self) -> dict[str, Encoder]:
        with self._lock:
            return dict(self._wanted)


@dataclass
class Snapshot:
    families: list[Metric] = field(default_factory=list)
    last_success: float | None = None
    last_duration_s: float = 0.0
    errors: int = 0
    ok: bool = False
    rendered: dict[str, bytes] = field(default_factory=dict)

    def text(self, content_type: str, encoder: Encoder) -> bytes:
        if content_type not in self.rendered:
            self.rendered[content_type] = render(self.families, encoder)  # first asked by a scrape
        return self.rendered[content_type]


class BackgroundCollection:
    def __init__(self, collector: Collector, interval_s: float, formats: Formats) -> None:
        self.collector = collector
        self.interval_s = interval_s
        self._formats = formats
        self._snapshot = Snapshot()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collect-{collector.name}", daemon=True)
        self._logged_error: str | None = None
        self._texts: dict[str, FamilyTexts] = {}  # per content type, on this collection's thread only

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def collect_once(self) -> None:
        started = time.perf_counter()
        try:
            families = list(self.collector.collect())
        except Exception as error:  # noqa: BLE001 - one collector failing must not stop the others
            duration = time.perf_counter() - started
            message = f"{type(error).__name__}: {error}"
            if message != self._logged_error:
                log.warning("collector %s failed: %s", self.collector.name, message)
                self._logged_error = message
            with self._lock:
                # Stale values would lie: the failed collector's families go until it succeeds again.
                previous = self._snapshot
                self._snapshot = Snapshot([], previous.last_success, duration, previous.errors + 1, False)
            return
        duration = time.perf_counter() - started
        self._logged_error = None
        snapshot = Snapshot(families, time.time(), duration, self._snapshot.errors, True)
        for content_type, encoder in self._formats.wanted().items():
            texts = self._texts.setdefault(content_type, FamilyTexts(encoder))
            snapshot.rendered[content_type] = texts.render(families)
        with self._lock:
            self._snapshot = snapshot

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.collect_once()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot


def self_metrics(snapshots: Sequence[tuple[str, Snapshot]]) -> list[Metric]:
    families = [
        gauge(
            "swm_exporter_collector_up",
            "1 if the collector's last run succeeded.",
            ("collector",),
            [([name], 1.0 if snap.ok else 0.0) for name, snap in snapshots],
        ),
        gauge(
            "swm_exporter_collector_duration_seconds",
            "How long the collector's last run took.",
            ("collector",),
            [([name], snap.last_duration_s) for name, snap in snapshots],
        ),
        gauge(
            "swm_exporter_collector_last_success_timestamp_seconds",
            "When the collector last succeeded (Unix time).",
            ("collector",),
            [([name], snap.last_success) for name, snap in snapshots if snap.last_success is not None],
        ),
        counter(
            "swm_exporter_collector_errors",
            "Failed runs of the collector.",
            ("collector",),
            [([name], float(snap.errors)) for name, snap in snapshots],
        ),
    ]
    successes = [snap.last_success for _, snap in snapshots if snap.last_success is not None]
    if successes:
        families.append(
            gauge(
                "swm_exporter_last_collection_timestamp_seconds",
                "When the least recent collector last succeeded (Unix time).",
                (),
                [((), min(successes))],
            )
        )
    return families


class SnapshotRegistry:
    """The collectors' background collections, composed."""

    def __init__(self, collectors: Sequence[Collector], interval_s: float) -> None:
        self.formats = Formats()
        self.collections = [BackgroundCollection(collector, interval_s, self.formats) for collector in collectors]

    def start_sources(self) -> None:
        """Starts collectors that listen in the background of their own (the XID event thread)."""
        for collection in self.collections:
            start = getattr(collection.collector, "start", None)
            if start is not None:
                start()

    def start(self) -> None:
        """Each collector's thread collects at once. Nothing is collected here, on the caller's thread:
        a hung driver must not keep the HTTP server from binding."""
        self.start_sources()
        for collection in self.collections:
            collection.start()

    def stop(self) -> None:
        for collection in self.collections:
            collection.stop()
            stop = getattr(collection.collector, "stop", None)
            if stop is not None:
                stop()

    def snapshots(self) -> list[tuple[str, Snapshot]]:
        return [(collection.collector.name, collection.snapshot()) for collection in self.collections]

    def collect(self) -> Iterable[Metric]:
        """Every family, as a prometheus_client collector would yield them."""
        snapshots = self.snapshots()
        for _, snapshot in snapshots:
            yield from snapshot.families
        yield from self_metrics(snapshots)

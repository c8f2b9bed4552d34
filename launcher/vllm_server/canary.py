"""A canary for an idle engine: one tiny completion, sent when nothing has been pending and nothing has finished
on that engine for the canary interval.

An engine that froze with nothing to do is invisible to the stall check: vLLM's queue gauges come from the
engine itself, so they stay at 0, and /health stays 200. The first real request would wait out the whole
stall timeout. The canary is that first request, sent by the launcher: while it is in flight the progress
watch counts it as pending work on its engine, so a frozen idle engine is caught within the canary interval
plus the stall timeout. Its latency and outcome are a synthetic availability signal. vLLM counts it like any
request (request_success_total, the token counters and the latency histograms): one request of one token per
engine and interval while idle, never while real traffic flows on that engine.

With data parallelism each engine (a DP rank, vLLM's `engine` label) gets its own canary, addressed with
vLLM's `X-data-parallel-rank` header: one rank frozen while the others serve sends its real requests into a
queue that the frozen rank's gauges never show, and a canary to the server at large would go to a healthy
rank. Only a frozen rank's own canary stays in flight.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from launcher.vllm_server.metrics_page import REQUESTS_FINISHED, MetricsPage

log = logging.getLogger(__name__)

CANARY_PROMPT = "ping"


@dataclass(frozen=True)
class CanaryReport:
    ok: int
    failed: int
    last_at: float | None  # Unix time the last one finished
    last_latency_s: float | None
    last_outcome: str  # "ok", or why it failed
    in_flight_since: float | None  # Unix time


# Sends one canary to the engine named (None: the server's choice) and says how it went: "ok", or why not.
Sender = Callable[[str | None], str]


class CompletionSender:
    """The canary over HTTP: a one-token completion, with the API key when vLLM wants one."""

    def __init__(self, base_url: str, model: str, authorization: str | None, timeout_s: float) -> None:
        self._url = base_url + "/v1/completions"
        self._body = json.dumps({"model": model, "prompt": CANARY_PROMPT, "max_tokens": 1}).encode()
        self._authorization = authorization
        self._timeout_s = timeout_s

    def __call__(self, engine: str | None) -> str:
        headers = {"Content-Type": "application/json", "User-Agent": "serve-with-monitoring canary"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        if engine is not None:
            headers["X-data-parallel-rank"] = engine
        try:
            request = urllib.request.Request(self._url, data=self._body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
            return "ok"
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"
        except (OSError, http.client.HTTPException, ValueError) as error:
            return str(getattr(error, "reason", error)) or type(error).__name__


@dataclass
class _EngineWatch:
    idle_since: float | None = None
    finished_seen: float | None = None
    sent_monotonic: float | None = None
    sent_wall: float | None = None


class Canary:
    def __init__(self, send: Sender, interval_s: float) -> None:
        self.interval_s = interval_s
        self._send = send
        self._lock = threading.Lock()
        self._run = 0  # a canary of an earlier run reports into nothing
        self._engines: dict[str, _EngineWatch] = {}
        self._ok = 0
        self._failed = 0
        self._last_at: float | None = None
        self._last_latency: float | None = None
        self._last_outcome = ""

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    def in_flight(self) -> bool:
        return bool(self.pending_engines())

    def pending_engines(self) -> frozenset[str]:
        """The engines a canary is in flight to: work pending there that their gauges cannot show."""
        with self._lock:
            return frozenset(name for name, watch in self._engines.items() if watch.sent_monotonic is not None)

    def observe(self, page: MetricsPage, now: float) -> None:
        """After each reading of /metrics: sends one to each engine idle for the interval."""
        if not self.enabled:
            return
        ranked = len(page.engines) > 1  # a single engine takes every request: no header needed
        due: list[str] = []
        with self._lock:
            for name, engine in page.engines.items():
                watch = self._engines.setdefault(name, _EngineWatch())
                finished = engine.value(REQUESTS_FINISHED)
                moved = watch.finished_seen is not None and finished != watch.finished_seen
                watch.finished_seen = finished
                if engine.pending or moved or watch.idle_since is None:
                    watch.idle_since = now
                    continue
                if watch.sent_monotonic is not None or now - watch.idle_since < self.interval_s:
                    continue
                watch.sent_monotonic, watch.sent_wall = now, time.time()
                due.append(name)
            run = self._run
        for name in due:
            threading.Thread(
                target=self._fly, args=(run, name, name if ranked else None), name="canary", daemon=True
            ).start()

    def reset(self) -> None:
        """A new run of vLLM: a canary still in flight belonged to the old one."""
        with self._lock:
            self._run += 1
            self._engines.clear()

    def _fly(self, run: int, name: str, rank: str | None) -> None:
        started = time.monotonic()
        outcome = self._send(rank)
        latency = time.monotonic() - started
        with self._lock:
            if run != self._run:
                return
            where = f" (engine {rank})" if rank is not None else ""
            if outcome != self._last_outcome:
                if outcome == "ok" and self._last_outcome:
                    log.info("the canary completion works again (%.2f s)%s", latency, where)
                elif outcome != "ok":
                    log.warning("the canary completion to the idle server failed%s: %s", where, outcome)
            watch = self._engines.setdefault(name, _EngineWatch())
            watch.sent_monotonic = watch.sent_wall = None
            watch.idle_since = time.monotonic()  # the next one a whole interval after this one
            self._last_at, self._last_latency, self._last_outcome = time.time(), latency, outcome
            if outcome == "ok":
                self._ok += 1
            else:
                self._failed += 1

    def report(self) -> CanaryReport:
        with self._lock:
            in_flight = [watch.sent_wall for watch in self._engines.values() if watch.sent_wall is not None]
            return CanaryReport(
                self._ok,
                self._failed,
                self._last_at,
                self._last_latency,
                self._last_outcome,
                min(in_flight, default=None),
            )

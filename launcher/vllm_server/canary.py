"""A canary for an idle engine: one tiny completion, sent when nothing has been pending and nothing has finished
for the canary interval.

An engine that froze with nothing to do is invisible to the stall check: vLLM's queue gauges come from the
engine itself, so they stay at 0, and /health stays 200. The first real request would wait out the whole
stall timeout. The canary is that first request, sent by the launcher: while it is in flight the progress
watch counts it as pending work, so a frozen idle engine is caught within the canary interval plus the stall
timeout. Its latency and outcome are a synthetic availability signal. vLLM counts it like any request
(request_success_total, the token counters and the latency histograms): one request of one token per
interval while idle, never while real traffic flows.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from launcher.vllm_server.metrics_page import MetricsPage

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


class Canary:
    def __init__(
        self, base_url: str, model: str, authorization: str | None, interval_s: float, timeout_s: float
    ) -> None:
        self.interval_s = interval_s
        self._url = base_url + "/v1/completions"
        self._body = json.dumps({"model": model, "prompt": CANARY_PROMPT, "max_tokens": 1}).encode()
        self._authorization = authorization
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._run = 0  # a canary of an earlier run reports into nothing
        self._idle_since: float | None = None
        self._finished_seen: float | None = None
        self._sent_monotonic: float | None = None
        self._sent_wall: float | None = None
        self._ok = 0
        self._failed = 0
        self._last_at: float | None = None
        self._last_latency: float | None = None
        self._last_outcome = ""

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    def in_flight(self) -> bool:
        with self._lock:
            return self._sent_monotonic is not None

    def observe(self, page: MetricsPage, now: float) -> None:
        """After each reading of /metrics: sends one when the server has been idle for the interval."""
        if not self.enabled:
            return
        pending = any(engine.pending for engine in page.engines.values())
        with self._lock:
            moved = self._finished_seen is not None and page.requests_finished != self._finished_seen
            self._finished_seen = page.requests_finished
            if pending or moved or self._idle_since is None:
                self._idle_since = now
                return
            if self._sent_monotonic is not None or now - self._idle_since < self.interval_s:
                return
            self._sent_monotonic, self._sent_wall = now, time.time()
            run = self._run
        threading.Thread(target=self._send, args=(run,), name="canary", daemon=True).start()

    def reset(self) -> None:
        """A new run of vLLM: a canary still in flight belonged to the old one."""
        with self._lock:
            self._run += 1
            self._idle_since = self._finished_seen = None
            self._sent_monotonic = self._sent_wall = None

    def _send(self, run: int) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "serve-with-monitoring canary"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        started = time.monotonic()
        try:
            request = urllib.request.Request(self._url, data=self._body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
            outcome = "ok"
        except urllib.error.HTTPError as error:
            outcome = f"HTTP {error.code}"
        except (OSError, http.client.HTTPException, ValueError) as error:
            outcome = str(getattr(error, "reason", error)) or type(error).__name__
        latency = time.monotonic() - started
        with self._lock:
            if run != self._run:
                return
            if outcome != self._last_outcome:
                if outcome == "ok" and self._last_outcome:
                    log.info("the canary completion works again (%.2f s)", latency)
                elif outcome != "ok":
                    log.warning("the canary completion to the idle server failed: %s", outcome)
            self._sent_monotonic = self._sent_wall = None
            self._idle_since = time.monotonic()  # the next one a whole interval after this one
            self._last_at, self._last_latency, self._last_outcome = time.time(), latency, outcome
            if outcome == "ok":
                self._ok += 1
            else:
                self._failed += 1

    def report(self) -> CanaryReport:
        with self._lock:
            return CanaryReport(
                self._ok, self._failed, self._last_at, self._last_latency, self._last_outcome, self._sent_wall
            )

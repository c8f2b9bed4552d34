"""The web config's rate_limit, as exporter-toolkit applies it: a token bucket over every request, one token
each `interval`, at most `burst` kept; a request that finds the bucket empty is answered 429."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, interval_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._last) / self._interval_s)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

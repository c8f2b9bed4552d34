"""When to restart a failed child: exponential backoff, a cap per window, and config-error detection."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exit:
    """How one run ended. `ever_healthy` tells a crash from a server that never came up."""

    code: int | None  # None: we killed it (failed health checks or start-up timeout)
    reason: str
    ever_healthy: bool
    cause: str = "exited"  # exited, unhealthy, engine_lost, stalled, startup_timeout, could_not_start


@dataclass
class RestartPolicy:
    max_restarts: int
    window_s: float
    backoff_initial_s: float
    backoff_max_s: float
    _restarts: deque[float] = field(default_factory=deque)
    _previous_exit: Exit | None = None

    def _prune(self, now: float) -> None:
        while self._restarts and now - self._restarts[0] > self.window_s:
            self._restarts.popleft()

    def restarts_in_window(self, now: float) -> int:
        self._prune(now)
        return len(self._restarts)

    def backoff_s(self, now: float) -> float:
        """1, 2, 4 ... seconds, growing with the restarts still inside the window."""
        exponent = self.restarts_in_window(now)
        return min(self.backoff_max_s, self.backoff_initial_s * (2**exponent))

    def same_failure_twice(self, latest: Exit) -> bool:
        """A server that never came up and ends the same way twice will not come up a third time."""
        previous, self._previous_exit = self._previous_exit, latest
        return (
            previous is not None
            and not previous.ever_healthy
            and not latest.ever_healthy
            and previous.code is not None
            and previous.code == latest.code
        )

    def may_restart(self, now: float) -> bool:
        return self.restarts_in_window(now) < self.max_restarts

    def record_restart(self, now: float) -> None:
        self._restarts.append(now)

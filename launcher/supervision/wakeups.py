"""What the supervisor sleeps on between events: no fixed tick.

It wakes when a child's main process exits (a pidfd), when a watched process exits (vLLM's EngineCore,
a grandchild: pidfds work for any process), when a signal arrives (signal.set_wakeup_fd), when a probe
finishes or another thread asks (a byte down a pipe), or when its next timer is due.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import signal
import threading
from collections.abc import Iterable

_LONGEST_SLEEP_S = 60.0  # a bound, not a tick: every timer the supervisor has is shorter


def next_on_grid(now: float, interval: float) -> float:
    """The first multiple of `interval` after `now` on the monotonic clock. Periodic work scheduled this
    way lines up: probes every 5 s and every 10 s, and the status file's rewrite, share one wakeup."""
    return (math.floor(now / interval + 1e-9) + 1) * interval


class Wakeups:
    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signals_routed = False

    def route_signals(self) -> None:
        """Signals wake the loop at once (main thread only, where Python allows it)."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
            self._signals_routed = True

    def wake(self) -> None:
        """From any thread, or a signal handler."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")  # a full pipe already holds a wakeup

    def wait(self, timeout: float, fds: Iterable[int] = ()) -> None:
        """Until something happens on `fds` (pidfds), a wake(), a signal, or `timeout` seconds."""
        poller = select.poll()
        poller.register(self._read, select.POLLIN)
        for fd in fds:
            poller.register(fd, select.POLLIN)
        milliseconds = math.ceil(min(max(0.0, timeout), _LONGEST_SLEEP_S) * 1000)
        try:
            poller.poll(milliseconds)
        except InterruptedError:
            pass
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                if not os.read(self._read, 4096):
                    return
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                return

    def close(self) -> None:
        if self._signals_routed:
            signal.set_wakeup_fd(-1)
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

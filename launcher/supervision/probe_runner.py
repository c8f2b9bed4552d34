"""Runs blocking probes off the main loop, on daemon threads that never delay the launcher's exit.

The threads are kept between probes: starting one per probe cost the launcher more CPU than many of the
probes themselves. A probe that never returns (a read of a process stuck in the kernel) keeps its thread;
the caller's deadline gives up on it, and the next probe gets another thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
A = TypeVar("A")

_Job = tuple[Callable[[Any], Any], Any, "Callable[[Any], bool] | None", "Future[Any]"]


class ProbeRunner:
    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._on_done = on_done  # wakes the supervisor, which sleeps until something happens
        self._idle: list[queue.SimpleQueue[_Job]] = []  # the inboxes of workers waiting for a probe
        self._lock = threading.Lock()

    def submit(self, probe: Callable[[A], T], argument: A, wake_if: Callable[[T], bool] | None = None) -> Future[T]:
        """`wake_if(result)` False lets a result wait for the supervisor's next timer: a healthy answer
        from a healthy child changes nothing, and waking for it would double the launcher's wakeups."""
        future: Future[T] = Future()
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), name="probe", daemon=True).start()
        inbox.put((probe, argument, wake_if, future))
        return future

    def _work(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            probe, argument, wake_if, future = inbox.get()
            wake = True
            try:
                result = probe(argument)
                future.set_result(result)
                wake = wake_if is None or wake_if(result)
            except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(error)
            with self._lock:
                self._idle.append(inbox)
            if wake and self._on_done is not None:
                self._on_done()


_BOUNDED = ProbeRunner()  # for run_with_deadline: its threads are kept too, not one left idle per call


def run_with_deadline(function: Callable[[A], T], argument: A, timeout: float) -> T | None:
    """Runs `function(argument)` on a daemon thread and waits at most `timeout`; None if it did not finish.

    For work that reads /proc of processes that may be stuck in the kernel: such a read can block, and
    the supervisor's loop must not.
    """
    future = _BOUNDED.submit(function, argument)
    try:
        return future.result(timeout=timeout)
    except Exception:  # noqa: BLE001 - a timeout, or the function failed: either way there is no result
        return None

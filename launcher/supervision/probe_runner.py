"""Runs blocking probes off the main loop, on daemon threads that never delay the launcher's exit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")


class ProbeRunner:
    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._on_done = on_done  # wakes the supervisor, which sleeps until something happens

    def submit(self, probe: Callable[[A], T], argument: A) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(probe(argument))
            except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(error)
            if self._on_done is not None:
                self._on_done()

        threading.Thread(target=run, name="probe", daemon=True).start()
        return future


def run_with_deadline(function: Callable[[A], T], argument: A, timeout: float) -> T | None:
    """Runs `function(argument)` on a daemon thread and waits at most `timeout`; None if it did not finish.

    For work that reads /proc of processes that may be stuck in the kernel: such a read can block, and
    the supervisor's loop must not.
    """
    future = ProbeRunner().submit(function, argument)
    try:
        return future.result(timeout=timeout)
    except Exception:  # noqa: BLE001 - a timeout, or the function failed: either way there is no result
        return None

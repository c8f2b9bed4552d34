"""Runs blocking probes off the main loop, on daemon threads that never delay the launcher's exit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")


class ProbeRunner:
    def submit(self, probe: Callable[[A], T], argument: A) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(probe(argument))
            except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(error)

        threading.Thread(target=run, name="probe", daemon=True).start()
        return future

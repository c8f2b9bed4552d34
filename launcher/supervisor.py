"""Runs the children: ticks their state machines, handles signals, tells systemd, publishes state."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from launcher.errors import EXIT_GAVE_UP, EXIT_OK
from launcher.orphan_guard import OrphanGuard
from launcher.sd_notify import SystemdNotifier
from launcher.supervised_child import State, SupervisedChild
from launcher.supervisor_state import ChildStatus, SupervisorStatus, write_status
from launcher.zombie_reaper import reap_orphans

log = logging.getLogger(__name__)

_TICK_S = 0.1
_PUBLISH_EVERY_S = 2.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Supervisor:
    def __init__(
        self,
        state_file: Path,
        grace_period_s: float,
        notifier: SystemdNotifier | None = None,
        guard: OrphanGuard | None = None,
    ) -> None:
        self.guard = guard
        self.children: list[SupervisedChild] = []
        self.info: dict[str, str] = {}
        self._state_file = state_file
        self._grace = grace_period_s
        self._notifier = notifier or SystemdNotifier()
        self._stop = threading.Event()
        self._stop_signals = 0
        self._stop_requested_at: float | None = None
        self._announced_ready = False
        self._next_watchdog_at = 0.0
        self._next_publish_at = 0.0
        self.on_ready: list[Callable[[], None]] = []  # run once, the first time the critical children are healthy
        self.on_child_ready: dict[str, list[Callable[[], None]]] = {}  # run once per child name
        self.on_shutdown: list[Callable[[], None]] = []  # run after every child has stopped
        self._children_announced: set[str] = set()
        self.is_init = os.getpid() == 1  # a container's ENTRYPOINT without an init: orphans are ours to reap

    def add(self, child: SupervisedChild) -> SupervisedChild:
        self.children.append(child)
        return child

    # -- signals ---------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signals += 1
        if self._stop_signals == 1:
            self._stop_requested_at = time.monotonic()
            log.info(
                "received %s; stopping (grace period %.0f s; send it again to kill at once)",
                signal.Signals(signum).name,
                self._grace,
            )
            self._stop.set()
        else:
            log.warning("received %s again; killing every child now", signal.Signals(signum).name)
            for child in self.children:
                child.kill_now()

    def install_signal_handlers(self) -> None:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def request_stop(self) -> None:
        self._stop.set()

    # -- the loop --------------------------------------------------------------------------------

    @property
    def critical(self) -> list[SupervisedChild]:
        return [child for child in self.children if child.spec.critical]

    def run(self) -> int:
        exit_code = EXIT_OK
        try:
            now = time.monotonic()
            for child in self.children:
                if not self._stop.is_set():
                    child.start(now)
            while not self._stop.is_set():
                now = time.monotonic()
                for child in self.children:
                    if self._stop.is_set():
                        break
                    child.tick(now)
                if self.is_init:
                    reap_orphans(self._own_pids())
                if self.guard is not None:
                    self.guard.ensure_running(self._own_pgids())
                failed = [child for child in self.critical if child.state == State.FAILED]
                self._after_tick(now)
                if failed:
                    outcome = failed[0].outcome
                    exit_code = outcome.exit_code if outcome else EXIT_GAVE_UP
                    break
                self._stop.wait(_TICK_S)
        finally:
            self.shutdown()  # whatever happened above, the children get their grace period
        return exit_code

    def _own_pgids(self) -> set[int]:
        return {child.process.pid for child in self.children if child.process and child.process.pid}

    def _own_pids(self) -> set[int]:
        guard_pid = self.guard.pid if self.guard is not None else None
        return self._own_pgids() | ({guard_pid} if guard_pid else set())

    def _after_tick(self, now: float) -> None:
        changed = any(child.changed for child in self.children)
        critical_healthy = bool(self.critical) and all(c.state == State.HEALTHY for c in self.critical)
        if critical_healthy and not self._announced_ready:
            self._announced_ready = True
            self._notifier.ready(self.status_line())
            for callback in self.on_ready:
                callback()
        elif changed:
            self._notifier.status(self.status_line())
        for child in self.children:
            name = child.spec.name
            if child.ever_ready and name not in self._children_announced:
                self._children_announced.add(name)
                for callback in self.on_child_ready.get(name, []):
                    callback()
        if critical_healthy and self._notifier.watchdog_interval_s and now >= self._next_watchdog_at:
            # Only while healthy: an unhealthy server stops the pings, so systemd's watchdog acts.
            self._notifier.watchdog()
            self._next_watchdog_at = now + self._notifier.watchdog_interval_s
        if changed or now >= self._next_publish_at:
            for child in self.children:
                child.changed = False
            self.publish()
            self._next_publish_at = now + _PUBLISH_EVERY_S

    def status_line(self) -> str:
        """systemd's STATUS=: each child's state, and why where it is not healthy."""
        return "; ".join(
            f"{child.spec.display_name} {child.state.value}"
            + (f" ({child.reason.removeprefix(child.state.value + ': ')})" if child.reason else "")
            for child in self.children
        )

    def snapshot(self) -> SupervisorStatus:
        return SupervisorStatus(
            launcher_pid=os.getpid(),
            updated_at=time.time(),
            children=[
                ChildStatus(
                    name=child.spec.name,
                    state=child.state.value,
                    critical=child.spec.critical,
                    pid=child.process.pid if child.process else None,
                    restarts_total=child.restarts_total,
                    last_exit_code=child.last_exit_code,
                    started_at=child.started_at,
                    ready_at=child.ready_at,
                    message=child.outcome.message if child.outcome else "",
                    reason=child.reason,
                    failures=dict(child.failures),
                    engine=child.spec.engine_report(),
                )
                for child in self.children
            ],
            info=dict(self.info),
        )

    def publish(self) -> None:
        try:
            write_status(self._state_file, self.snapshot())
        except OSError as error:
            log.warning("cannot write %s: %s", self._state_file, error)

    def shutdown(self) -> None:
        """Stop every child, the critical ones last, all within one grace period."""
        self._notifier.stopping("stopping")
        started = self._stop_requested_at or time.monotonic()
        deadline = started + self._grace
        for child in self.children:
            child.terminate()  # all at once, so their grace periods overlap
        for child in sorted(self.children, key=lambda c: c.spec.critical):
            child.stop(max(0.0, deadline - time.monotonic()))
        self.publish()
        for hook in self.on_shutdown:
            hook()

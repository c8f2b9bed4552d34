"""Runs the children: sleeps until something happens, advances their state machines, handles signals,
tells systemd, publishes the status file.

There is no fixed tick. The loop sleeps on the children's pidfds, the signal wakeup fd and a pipe that
finished probes write to, for as long as the earliest timer allows (supervision/wakeups.py). A stop
signal is acted on inside its handler: every child gets its SIGTERM there and then, whatever the loop
was doing; the loop then sees each stop through (one algorithm: supervision/stopping.py).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from launcher.errors import EXIT_GAVE_UP, EXIT_OK
from launcher.states import FINAL, REWRITTEN_EVERY_S, ChildStatus, State, SupervisorStatus
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.repeated_warning import RepeatedWarning
from launcher.supervision.sd_notify import SystemdNotifier
from launcher.supervision.status_file import write_status
from launcher.supervision.supervised_child import Outcome, SupervisedChild
from launcher.supervision.wakeups import Wakeups, next_on_grid
from launcher.supervision.zombie_reaper import reap_orphans

log = logging.getLogger(__name__)

_GUARD_CHECK_EVERY_S = 5.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StatusWriter:
    """Writes the status file on its own thread, newest snapshot first: a slow or full disk never holds up
    the loop, and a write that fails is said once, then counted and summarised now and then."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.Queue[SupervisorStatus | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="status-writer", daemon=True)
        self._thread.start()
        self._failing = RepeatedWarning(log, f"cannot write {path}")

    def submit(self, status: SupervisorStatus) -> None:
        try:
            self._queue.get_nowait()  # an unwritten older snapshot is worthless now
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(status)
        except queue.Full:
            pass

    def _run(self) -> None:
        while (status := self._queue.get()) is not None:
            self.write(status)

    def write(self, status: SupervisorStatus) -> None:
        try:
            write_status(self._path, status)
        except OSError as error:
            self._failing.happened(error.strerror or error)
            return
        self._failing.recovered()

    def close(self, last: SupervisorStatus) -> None:
        self.submit(last)
        try:
            self._queue.put(None, timeout=1.0)
        except queue.Full:
            pass
        self._thread.join(timeout=2.0)


class Supervisor:
    def __init__(
        self,
        state_file: Path,
        grace_period_s: float,
        notifier: SystemdNotifier | None = None,
        guard: OrphanGuard | None = None,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.guard = guard
        self.children: list[SupervisedChild] = []
        self.info: dict[str, str] = {}
        self.wakeups = wakeups or Wakeups()
        self._state_file = state_file
        self._grace = grace_period_s
        self._notifier = notifier or SystemdNotifier()
        self._stop_requested = threading.Event()
        self._stop_signals = 0
        self._stop_requested_at: float | None = None
        self._announced_ready = False
        self._next_watchdog_at = 0.0
        self._next_publish_at = 0.0
        self._next_guard_check_at = 0.0
        self._writer: StatusWriter | None = None
        self.on_ready: list[Callable[[], None]] = []  # run once, the first time the critical children are healthy
        self.on_child_ready: dict[str, list[Callable[[], None]]] = {}  # run once per child name
        self.on_shutdown: list[Callable[[], None]] = []  # run after every child has stopped
        self._children_announced: set[str] = set()
        self._handlers_installed = False
        self.is_init = os.getpid() == 1  # a container's ENTRYPOINT without an init: orphans are ours to reap
        self.outcome: Outcome | None = None  # why it gave up on its critical child, when it did

    def add(self, child: SupervisedChild) -> SupervisedChild:
        self.children.append(child)
        return child

    # -- signals ---------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signals += 1
        if self._stop_signals == 1:
            self._stop_requested_at = time.monotonic()
            for child in self.children:
                child.terminate()  # here and now: the loop may be busy, a stop must not wait for it
            log.info(
                "received %s; stopping (grace period %.0f s; send it again to kill at once)",
                signal.Signals(signum).name,
                self._grace,
            )
            self._stop_requested.set()
        else:
            log.warning("received %s again; killing every child now", signal.Signals(signum).name)
            for child in self.children:
                child.kill_now()
        self.wakeups.wake()

    def install_signal_handlers(self) -> None:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        self.wakeups.route_signals()
        self._handlers_installed = True

    def request_stop(self) -> None:
        """From any thread."""
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._stop_requested.set()
        self.wakeups.wake()

    # -- the loop --------------------------------------------------------------------------------

    @property
    def critical(self) -> list[SupervisedChild]:
        return [child for child in self.children if child.spec.critical]

    def run(self) -> int:
        exit_code = EXIT_OK
        self._writer = StatusWriter(self._state_file)
        try:
            now = time.monotonic()
            for child in self.children:
                if not self._stop_requested.is_set():
                    child.start(now)
            while not self._stop_requested.is_set():
                now = time.monotonic()
                for child in self.children:
                    if self._stop_requested.is_set():
                        break
                    child.tick(now)
                self._housekeeping(now)
                failed = [child for child in self.critical if child.state in FINAL]
                self._after_tick(now)
                if failed:
                    outcome = self.outcome = failed[0].outcome
                    exit_code = outcome.exit_code if outcome else EXIT_GAVE_UP
                    if outcome is not None and outcome.linger_s > 0:
                        self._linger(outcome.linger_s)
                    break
                if self._stop_requested.is_set():
                    break
                self._sleep(now)
        finally:
            self.shutdown()  # whatever happened above, the children get their grace period
        return exit_code

    def _linger(self, seconds: float) -> None:
        """The critical child is gone for good, and a person must act: the other children (the exporter,
        Prometheus, Alertmanager) go on a moment, so that the alert saying so reaches its receivers."""
        log.warning("keeping the monitoring up %.0f s so that the alert goes out; then exiting", seconds)
        until = time.monotonic() + seconds
        while not self._stop_requested.is_set() and (now := time.monotonic()) < until:
            for child in self.children:
                child.tick(now)
            self._housekeeping(now)
            self._after_tick(now)
            due = min([child.wake_at(now) for child in self.children] + [self._next_publish_at, until])
            self.wakeups.wait(due - time.monotonic(), [fd for child in self.children for fd in child.wait_fds()])

    def _sleep(self, now: float) -> None:
        due = min(
            [child.wake_at(now) for child in self.children]
            + [self._next_publish_at, self._next_guard_check_at]
            + ([self._next_watchdog_at] if self._watchdog_due() else [])
        )
        fds = [fd for child in self.children for fd in child.wait_fds()]
        self.wakeups.wait(due - time.monotonic(), fds)

    def _housekeeping(self, now: float) -> None:
        if self.is_init:
            reap_orphans(self._own_pids())
        if self.guard is not None and now >= self._next_guard_check_at:
            self.guard.ensure_running(self._own_pgids())
            self._next_guard_check_at = next_on_grid(now, _GUARD_CHECK_EVERY_S)

    def _own_pgids(self) -> set[int]:
        return {child.process.pid for child in self.children if child.process and child.process.pid}

    def _own_pids(self) -> set[int]:
        guard_pid = self.guard.pid if self.guard is not None else None
        return self._own_pgids() | ({guard_pid} if guard_pid else set())

    def _critical_healthy(self) -> bool:
        return bool(self.critical) and all(c.state == State.HEALTHY for c in self.critical)

    def _watchdog_due(self) -> bool:
        return bool(self._notifier.watchdog_interval_s) and self._critical_healthy()

    def _after_tick(self, now: float) -> None:
        changed = any(child.changed for child in self.children)
        critical_healthy = self._critical_healthy()
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
        interval = self._notifier.watchdog_interval_s
        if critical_healthy and interval and now >= self._next_watchdog_at:
            # Only while healthy: an unhealthy server stops the pings, so systemd's watchdog acts.
            self._notifier.watchdog()
            self._next_watchdog_at = now + interval
        if changed or now >= self._next_publish_at:
            for child in self.children:
                child.changed = False
            self.publish()
            self._next_publish_at = next_on_grid(now, REWRITTEN_EVERY_S)

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
                    incidents=dict(child.incidents),
                    last_incident=child.last_incident,
                    transitions=list(child.transitions),
                )
                for child in self.children
            ],
            info=dict(self.info),
        )

    def publish(self) -> None:
        if self._writer is None:
            self._writer = StatusWriter(self._state_file)
        self._writer.submit(self.snapshot())

    def shutdown(self) -> None:
        """Stop every child within one grace period, counted from the stop request: all at once, so that
        their grace periods overlap, through the same loop and the same stop algorithm as a restart."""
        self._notifier.stopping("stopping")
        started = self._stop_requested_at or time.monotonic()
        deadline = started + self._grace
        now = time.monotonic()
        for child in self.children:
            child.request_stop(now, max(0.0, deadline - now))
        self.publish()
        while not all(child.stopped for child in self.children):
            now = time.monotonic()
            for child in self.children:
                child.tick(now)
            if self.is_init:
                reap_orphans(self._own_pids())
            pending = [child for child in self.children if not child.stopped]
            if not pending:
                break
            due = min(child.wake_at(now) for child in pending)
            self.wakeups.wait(due - time.monotonic(), [fd for child in pending for fd in child.wait_fds()])
        last = self.snapshot()
        if self._writer is not None:
            self._writer.close(last)
        for hook in self.on_shutdown:
            hook()
        if self._handlers_installed:
            # Every child is gone and the launcher is on its way out: a stop signal now (a second Ctrl-C)
            # has nothing left to do, and must not turn the exit status into "killed by SIGTERM".
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)

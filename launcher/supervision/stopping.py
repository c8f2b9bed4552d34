"""The one stop algorithm, for every stop: the launcher's own, a restart, a helper's.

SIGTERM to the main process (a frozen one is continued first, so that it can act on it), then wait for
the whole process group, up to the grace period. The wait is cut short when the child's spec says the
rest buys nothing (vLLM's HTTP server left waiting for clients whose streams were already aborted).
Then SIGKILL the group, and reap the main process; one that does not die even then is left to the
orphan guard. Nothing here blocks: the supervisor calls advance() whenever it wakes, and sleeps until
wake_at() or until the main process's pidfd says it has exited.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from launcher.supervision import process_groups
from launcher.supervision.child_process import ChildProcess
from launcher.supervision.probe_runner import run_with_deadline

log = logging.getLogger(__name__)

POLL_S = 0.05  # while a group winds down: its other members have no pidfd to wake the supervisor
BEFORE_KILL_TIMEOUT_S = 1.0
REAP_TIMEOUT_S = 2.0  # after SIGKILL; a process stuck in the kernel (D state) may never die


class _Phase(enum.Enum):
    TERMINATED = "terminated"
    KILLED = "killed"
    DONE = "done"


class Stop:
    def __init__(
        self,
        process: ChildProcess,
        grace_s: float,
        now: float,
        display_name: str,
        done_waiting: Callable[[int, float], str | None] | None = None,
        before_kill: Callable[[int], None] | None = None,
    ) -> None:
        self.process = process
        self.deadline = now + grace_s
        self._name = display_name
        self._done_waiting = done_waiting
        self._before_kill = before_kill
        self._phase = _Phase.TERMINATED
        self._killed_at = 0.0
        self._kill_requested = False
        self.exit_code: int | None = None
        process.terminate()

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    def shorten(self, deadline: float) -> None:
        """A stop already under way gets the launcher's own, earlier, deadline."""
        self.deadline = min(self.deadline, deadline)

    def kill_now(self) -> None:
        """Safe inside a signal handler: the group is SIGKILLed, advance() reaps it."""
        self.process.kill_group()
        self._kill_requested = True
        self.deadline = 0.0

    def wake_at(self, now: float) -> float:
        if self._phase is _Phase.KILLED:
            return min(now + POLL_S, self._killed_at + REAP_TIMEOUT_S)
        return min(now + POLL_S, self.deadline)

    def advance(self, now: float) -> bool:
        """One step; True once the child is gone (or given up on)."""
        if self._phase is _Phase.DONE:
            return True
        if self._phase is _Phase.TERMINATED:
            if self.process.finished():
                return self._reaped()
            pid = self.process.pid
            early = self._done_waiting(pid, now) if self._done_waiting is not None and pid is not None else None
            if early is None and now < self.deadline:
                return False
            if early is not None:
                log.info("%s: %s", self._name, early)
            elif self._kill_requested:
                log.info("%s killed at once, as asked", self._name)
            else:
                log.warning("%s did not stop within its grace period; killing its process group", self._name)
            self._kill(now)
        if self.process.reap():
            return self._reaped()
        if now - self._killed_at >= REAP_TIMEOUT_S:
            self.exit_code = self.process.poll()
            self.process.abandon()
            self._phase = _Phase.DONE
            return True
        return False

    def _kill(self, now: float) -> None:
        pid = self.process.pid
        if self._before_kill is not None and pid is not None and process_groups.alive(pid):
            run_with_deadline(self._before_kill, pid, timeout=BEFORE_KILL_TIMEOUT_S)
        self.process.kill_group()
        self._killed_at = now
        self._phase = _Phase.KILLED

    def _reaped(self) -> bool:
        self.exit_code = self.process.poll()
        if not self.process.reap():
            return False
        self._phase = _Phase.DONE
        return True

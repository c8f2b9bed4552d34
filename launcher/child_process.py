"""One child program in its own process group, its output teed to the terminal and a log file."""

from __future__ import annotations

import codecs
import collections
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

import psutil

from launcher.orphan_guard import OrphanGuard
from launcher.probe_runner import run_with_deadline

log = logging.getLogger(__name__)

_LOG_ROTATE_BYTES = 50 * 1024 * 1024
_TAIL_LINES = 40
_MAX_PARTIAL_LINE = 64 * 1024
_ECHO_BACKLOG = 2000  # chunks; beyond it echo drops output rather than stall the child (the log keeps it)
_REAP_TIMEOUT_S = 2.0
_BEFORE_KILL_TIMEOUT_S = 1.0
_FRONT_END_SETTLE_S = 1.0  # an idle vLLM's HTTP server exits within about 0.3 s of its engine
FRONT_END_ONLY = "its engine has stopped and only its front end is left, waiting for clients to hang up; killing it"


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: vLLM's orphans are reaped by
    init, which may take a second (or by us, as PID 1 in a container), and until then their zombies
    would make a dead group look alive and hold up the stop."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def stopped_members(pgid: int) -> list[int]:
    """Members of the group frozen by a stop signal (SIGSTOP, a debugger, a cgroup freezer)."""
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] == psutil.STATUS_STOPPED and os.getpgid(process.pid) == pgid:
                found.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return found


class LingeringFrontEnd:
    """While a child stops: has only its front end been left, for long enough to stop waiting for it?"""

    def __init__(self, only_front_end_left: Callable[[int], bool] | None) -> None:
        self._check = only_front_end_left
        self._since: float | None = None

    def expired(self, pid: int, now: float) -> bool:
        if self._check is None or not self._check(pid):
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= _FRONT_END_SETTLE_S


class ChildProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        guard: OrphanGuard,
        echo: TextIO | None = None,
        echo_prefix: str = "",
        cwd: Path | None = None,
        niceness: int = 0,
    ) -> None:
        self.name = name
        self._niceness = niceness
        self.argv = tuple(argv)
        self._env = dict(env)
        self._log_path = log_path
        self._guard = guard
        self._echo = echo if echo is not None else sys.stdout
        self._echo_prefix = echo_prefix
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._returncode: int | None = None
        self._terminated = False
        self.started_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        _rotate(self._log_path)
        log_file = self._log_path.open("ab")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log_file.write(f"---- {stamp} starting: {' '.join(self.argv)}\n".encode())
        log_file.flush()
        try:
            self._process = subprocess.Popen(
                self.argv,
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: one signal reaches its whole tree
            )
        except OSError:
            log_file.close()
            raise
        self._guard.watch(self._process.pid)
        if self._niceness:
            try:
                # Right after the fork, before it starts any work of note; its own children inherit it.
                os.setpriority(os.PRIO_PROCESS, self._process.pid, os.getpriority(os.PRIO_PROCESS, 0) + self._niceness)
            except OSError:
                pass
        self._returncode = None
        self._terminated = False
        self._tail.clear()
        self.started_at = time.time()
        self._reader = threading.Thread(
            target=self._pump, args=(self._process.stdout, log_file), name=f"{self.name}-output", daemon=True
        )
        self._reader.start()

    # -- output ----------------------------------------------------------------------------------

    def _pump(self, stream: IO[bytes], log_file: IO[bytes]) -> None:
        """Copies output as it arrives, not line by line: a download's progress bar redraws with \\r.

        Nothing here may block for long: a child whose pipe fills up stops in its next write, and a
        stalled vLLM fails its health checks. So a failing log file is given up on, and the terminal
        gets its copy through a bounded queue that drops output when the terminal does not keep up.
        """
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        echo: queue.Queue[str | None] = queue.Queue(maxsize=_ECHO_BACKLOG)
        threading.Thread(target=self._echo_loop, args=(echo,), name=f"{self.name}-echo", daemon=True).start()
        pending = ""
        at_line_start = True
        logging_to_file = True
        with log_file:
            while chunk := stream.read1(65536):  # type: ignore[attr-defined]
                if logging_to_file:
                    try:
                        log_file.write(chunk)
                        log_file.flush()
                    except OSError as error:
                        logging_to_file = False
                        log.error("cannot write %s (%s); its output goes to the terminal only", self._log_path, error)
                text = decoder.decode(chunk)
                try:
                    echo.put_nowait(self._prefixed(text, at_line_start))
                except queue.Full:
                    pass
                at_line_start = text.endswith("\n") if text else at_line_start
                *lines, pending = re.split(r"[\r\n]", pending + text)
                pending = pending[-_MAX_PARTIAL_LINE:]
                self._tail.extend(line for line in lines if line.strip())
        if pending.strip():
            self._tail.append(pending)
        echo.put(None)

    def _prefixed(self, text: str, at_line_start: bool) -> str:
        if not self._echo_prefix or not text:
            return text
        body = text[:-1].replace("\n", "\n" + self._echo_prefix) + text[-1:]
        return (self._echo_prefix if at_line_start else "") + body

    def _echo_loop(self, echo: queue.Queue[str | None]) -> None:
        while (text := echo.get()) is not None:
            try:
                self._echo.write(text)
                self._echo.flush()
            except (OSError, ValueError):
                pass

    def tail(self) -> list[str]:
        return list(self._tail)

    def last_meaningful_line(self) -> str:
        for line in reversed(list(self._tail)):  # list() is atomic; the reader thread appends meanwhile
            if line.strip():
                return line.strip()
        return "(no output)"

    # -- state -----------------------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit code once the main process has exited (negative: killed by that signal)."""
        if self._process is None:
            return self._returncode
        code = self._process.poll()
        if code is not None:
            self._returncode = code
        return code

    def finished(self) -> bool:
        """The main process has exited and nothing of its group is left."""
        process = self._process
        return process is None or (process.poll() is not None and not group_alive(process.pid))

    # -- stopping --------------------------------------------------------------------------------

    def terminate(self, term_signal: int = signal.SIGTERM) -> None:
        """Sends the stop signal once, without waiting: to the main process, or to the group if it is gone."""
        process = self._process
        if process is None or self._terminated:
            return
        self._terminated = True
        try:
            if process.poll() is None:
                process.send_signal(term_signal)
            else:
                os.killpg(process.pid, term_signal)  # the leader is gone; its stragglers get the same grace
        except (ProcessLookupError, PermissionError):
            pass
        self._continue_stopped(process.pid)

    def _continue_stopped(self, pgid: int) -> None:
        """A stopped process acts on SIGTERM only once continued: without this it would sit out the
        whole grace period and die by SIGKILL, its shutdown never run."""
        frozen = stopped_members(pgid)
        if not frozen:
            return
        try:
            os.killpg(pgid, signal.SIGCONT)
        except (ProcessLookupError, PermissionError):
            return
        log.warning(
            "%s: pid %s was stopped (SIGSTOP or a freezer); continued it so that it can act on SIGTERM",
            self.name,
            ", ".join(map(str, frozen)),
        )

    def kill_group(self, before_kill: Callable[[int], None] | None = None) -> None:
        """SIGKILL the whole group. `before_kill(pgid)` runs first (bounded), while the group can be inspected."""
        process = self._process
        if process is None:
            return
        if before_kill is not None and group_alive(process.pid):
            run_with_deadline(before_kill, process.pid, timeout=_BEFORE_KILL_TIMEOUT_S)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def finalize(self) -> int | None:
        """Reaps the main process (bounded: one stuck in the driver may never die) and lets go of the group."""
        process = self._process
        if process is None:
            return self._returncode
        try:
            self._returncode = process.wait(timeout=_REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error(
                "%s (pid %d) does not die even after SIGKILL (stuck in the kernel?); leaving it to the orphan guard",
                self.name,
                process.pid,
            )
            self._process = None
            return None
        deadline = time.monotonic() + 0.5
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)  # SIGKILLed members vanish once init has reaped them
        # Forget it even if a zombie lingers: a recycled pgid must never be killed later.
        self._guard.forget(process.pid)
        if self._reader is not None:
            self._reader.join(timeout=0.5)
            self._reader = None
        self._process = None
        return self._returncode

    def stop(
        self,
        grace: float,
        term_signal: int = signal.SIGTERM,
        before_kill: Callable[[int], None] | None = None,
        only_front_end_left: Callable[[int], bool] | None = None,
    ) -> int | None:
        """SIGTERM, wait up to `grace` for the whole group (less once only its front end lingers), then
        SIGKILL the group; blocks meanwhile."""
        process = self._process
        if process is None:
            return self._returncode
        deadline = time.monotonic() + grace
        lingering = LingeringFrontEnd(only_front_end_left)
        self.terminate(term_signal)
        while time.monotonic() < deadline and not self.finished():
            if lingering.expired(process.pid, time.monotonic()):
                log.info("%s: " + FRONT_END_ONLY, self.name)
                break
            time.sleep(0.05)
        if not self.finished():
            if time.monotonic() >= deadline:
                log.warning("%s did not exit within %.1f s of SIGTERM; killing its process group", self.name, grace)
            self.kill_group(before_kill)
        return self.finalize()

    def kill_now(self) -> None:
        """Safe inside a signal handler: signals the group, leaves reaping to the main loop."""
        process = self._process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

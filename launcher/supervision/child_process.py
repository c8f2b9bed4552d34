"""One child program in its own process group, its output teed to the terminal and a log file, and the
signals that stop it. Nothing here blocks: how long to wait, and what next, is supervision/stopping.py."""

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

from launcher.file_writes import open_for_append
from launcher.supervision import process_groups
from launcher.supervision.orphan_guard import OrphanGuard

log = logging.getLogger(__name__)

_LOG_ROTATE_BYTES = 50 * 1024 * 1024
_TAIL_LINES = 40
_MAX_PARTIAL_LINE = 64 * 1024
_ECHO_BACKLOG = 2000  # chunks; beyond it echo drops output rather than stall the child (the log keeps it)


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
        self._pidfd: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        # 0600: a child's output may hold what its user alone should read; a link planted at the name is refused.
        log_file = open_for_append(self._log_path, 0o600, rotate_over=_LOG_ROTATE_BYTES)
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
        try:
            self._pidfd = os.pidfd_open(self._process.pid)  # readable once it exits: the supervisor sleeps on it
        except OSError:
            self._pidfd = None  # an old kernel: the supervisor's timers still notice the exit
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

    def last_meaningful_line(self) -> str:
        for line in reversed(list(self._tail)):  # list() is atomic; the reader thread appends meanwhile
            if line.strip():
                return line.strip()
        return "(no output)"

    # -- state -----------------------------------------------------------------------------------

    @property
    def exit_fd(self) -> int | None:
        """A pidfd that becomes readable when the main process exits, while it has not been seen to."""
        return self._pidfd if self._returncode is None else None

    def poll(self) -> int | None:
        """The exit code once the main process has exited (negative: killed by that signal)."""
        if self._process is None:
            return self._returncode
        code = self._process.poll()
        if code is not None and self._returncode is None:
            self._returncode = code
            self._close_pidfd()
        return code

    def finished(self) -> bool:
        """The main process has exited and nothing of its group is left."""
        process = self._process
        return process is None or (self.poll() is not None and not process_groups.alive(process.pid))

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    # -- signals; the stop itself is supervision/stopping.py ---------------------------------------

    def terminate(self, term_signal: int = signal.SIGTERM) -> None:
        """Sends the stop signal once, without waiting: to the main process, or to the group if it is gone.
        Safe inside a signal handler."""
        process = self._process
        if process is None or self._terminated:
            return
        self._terminated = True
        # Looked for before the signal: vLLM's API server force-kills its frozen engine within
        # milliseconds of a SIGTERM, and a look afterwards would race that and miss what was frozen.
        frozen = process_groups.stopped_pids(process.pid)
        try:
            if process.poll() is None:
                process.send_signal(term_signal)
            else:
                os.killpg(process.pid, term_signal)  # the leader is gone; its stragglers get the same grace
        except (ProcessLookupError, PermissionError):
            pass
        self._continue_stopped(process.pid, frozen)

    def _continue_stopped(self, pgid: int, frozen: list[int]) -> None:
        """A stopped process acts on SIGTERM only once continued: without this it would sit out the
        whole grace period and die by SIGKILL, its shutdown never run."""
        if frozen and process_groups.signal_group(pgid, signal.SIGCONT):
            log.warning(
                "%s: pid %s was stopped (SIGSTOP or a freezer); continued it so that it can act on SIGTERM",
                self.name,
                ", ".join(map(str, frozen)),
            )

    def kill_group(self) -> None:
        """SIGKILL the whole group. Safe inside a signal handler: reaping is left to reap()."""
        if self._process is not None:
            process_groups.kill_group(self._process.pid)

    def reap(self) -> bool:
        """After the group is gone or killed: True once the main process is reaped, which lets go of the
        group (a recycled pgid must never be signalled later). Never blocks."""
        process = self._process
        if process is None:
            return True
        if self.poll() is None:
            return False
        # Forget it even if a zombie of the group lingers: init reaps those.
        self._guard.forget(process.pid)
        if self._reader is not None:
            self._reader.join(timeout=0.5)
            self._reader = None
        self._close_pidfd()
        self._process = None
        return True

    def abandon(self) -> None:
        """The main process does not die even after SIGKILL (stuck in the kernel): let go of it, leaving
        its group to the orphan guard, which kills whatever is left if the launcher exits."""
        if self._process is not None:
            log.error(
                "%s (pid %d) does not die even after SIGKILL (stuck in the kernel?); leaving it to the orphan guard",
                self.name,
                self._process.pid,
            )
        self._close_pidfd()
        self._process = None

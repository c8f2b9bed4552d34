"""One child program in its own process group, its output teed to the terminal and a log file."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

from launcher.orphan_guard import OrphanGuard

log = logging.getLogger(__name__)

_LOG_ROTATE_BYTES = 50 * 1024 * 1024
_TAIL_LINES = 40


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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
    ) -> None:
        self.name = name
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
        self._returncode = None
        self._terminated = False
        self._tail.clear()
        self.started_at = time.time()
        self._reader = threading.Thread(
            target=self._pump, args=(self._process.stdout, log_file), name=f"{self.name}-output", daemon=True
        )
        self._reader.start()

    def _pump(self, stream: IO[bytes], log_file: IO[bytes]) -> None:
        with log_file:
            for raw in iter(stream.readline, b""):
                log_file.write(raw)
                log_file.flush()
                text = raw.decode(errors="replace")
                self._tail.append(text.rstrip("\n"))
                try:
                    self._echo.write(self._echo_prefix + text)
                    self._echo.flush()
                except (OSError, ValueError):
                    pass

    def poll(self) -> int | None:
        """The exit code once the main process has exited (negative: killed by that signal)."""
        if self._process is None:
            return self._returncode
        code = self._process.poll()
        if code is not None:
            self._returncode = code
        return code

    def tail(self) -> list[str]:
        return list(self._tail)

    def last_meaningful_line(self) -> str:
        for line in reversed(self._tail):
            if line.strip():
                return line.strip()
        return "(no output)"

    def stop(
        self, grace: float, term_signal: int = signal.SIGTERM, before_kill: Callable[[int], None] | None = None
    ) -> int | None:
        """SIGTERM the main process, wait up to `grace` for the whole group, then SIGKILL the group.

        `before_kill(pgid)` runs just before the SIGKILL, while the group still exists to be looked at.
        """
        process = self._process
        if process is None:
            return self._returncode
        pgid = process.pid
        deadline = time.monotonic() + grace
        self.terminate(term_signal)
        # vLLM's engine processes exit shortly after the API server; give the group the same grace.
        while time.monotonic() < deadline and (process.poll() is None or _group_alive(pgid)):
            time.sleep(0.05)
        if process.poll() is None or _group_alive(pgid):
            log.warning("%s did not exit within %.1f s of SIGTERM; killing its process group", self.name, grace)
            if before_kill is not None:
                before_kill(pgid)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._returncode = process.wait()
        self._finish(pgid)
        return self._returncode

    def terminate(self, term_signal: int = signal.SIGTERM) -> None:
        """Sends the stop signal without waiting; stop() then waits out the grace period."""
        process = self._process
        if process is None or self._terminated:
            return
        self._terminated = True
        try:
            if process.poll() is None:
                process.send_signal(term_signal)
            else:
                os.killpg(process.pid, term_signal)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_group(self) -> None:
        process = self._process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _finish(self, pgid: int) -> None:
        deadline = time.monotonic() + 0.5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)  # SIGKILLed members vanish once init has reaped them
        # Forget it even if a zombie lingers: a recycled pgid must never be killed later.
        self._guard.forget(pgid)
        if self._reader is not None:
            self._reader.join(timeout=0.5)
            self._reader = None
        self._process = None

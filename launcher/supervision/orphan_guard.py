"""Kills the launcher's process groups if the launcher dies without stopping them.

vLLM's EngineCore outlives a SIGKILLed API server, and nothing can run in a SIGKILLed launcher.
So a tiny guard process, in its own session, holds the read end of a pipe. The launcher tells it
each process group it starts and stops. When the pipe reaches EOF (the launcher is gone, however it
died), the guard terminates every group still listed, then kills what is left.

It also removes the files it was told about: the shared memory a killed vLLM leaves in /dev/shm, and
vLLM's IPC directory when it had to live in /tmp. Segments made after the launcher last looked (a vLLM
still loading its model, say) it was never told about; so once the groups are dead it also sweeps
/dev/shm for multiprocessing's segments of this user, made since the run it was told of began, that no
live process holds.

Run as `python -m launcher.supervision.orphan_guard`; it imports only the standard library (and
process_groups, shared_memory_files and helper_environment, which do the same).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import IO

from launcher.helper_environment import helper_environment
from launcher.supervision import process_groups
from launcher.supervision.shared_memory_files import orphaned_since, unlink_all

log = logging.getLogger(__name__)

_TERM_GRACE_S = 3.0


class OrphanGuard:
    """The launcher's side: start the guard, then watch() and forget() process groups."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "launcher.supervision.orphan_guard"],
            stdin=subprocess.PIPE,
            env=helper_environment(),  # it outlives the launcher: it holds no secret of it
            start_new_session=True,  # Ctrl-C and `kill -- -PGID` on the launcher must not reach it
            close_fds=True,
        )
        self._pipe = self._process.stdin

    def ensure_running(self, pgids: set[int]) -> None:
        """Restarts the guard if it died (reaping it too), and tells the new one what it must watch."""
        if self._process is None or self._process.poll() is None:
            return
        log.error("the orphan guard exited (code %s); starting a new one", self._process.returncode)
        self._pipe = None
        self.start()
        for pgid in pgids:
            self.watch(pgid)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _send(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()
        except (BrokenPipeError, ValueError):
            self._pipe = None

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def watch_file(self, path: str) -> None:
        self._send(f"f+{path}")

    def forget_file(self, path: str) -> None:
        self._send(f"f-{path}")

    def sweep_shared_memory_since(self, started_at: float) -> None:
        """If the launcher dies, also remove unheld multiprocessing segments made since `started_at`."""
        self._send(f"s+{started_at!r}")

    def forget_sweep(self) -> None:
        self._send("s-")

    def close(self) -> None:
        if self._pipe is not None:
            try:
                self._pipe.close()
            except OSError:
                pass
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(timeout=_TERM_GRACE_S + 2)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None


def _signal_all(pgids: set[int], signum: int) -> None:
    for pgid in pgids:
        process_groups.signal_group(pgid, signum)


def _guard_main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    watched: set[int] = set()
    files: set[str] = set()
    sweep_since: float | None = None
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="ignore").rstrip("\n")
        if line.startswith(("f+", "f-")):
            (files.add if line[1] == "+" else files.discard)(line[2:])
        elif line.startswith("s"):
            sweep_since = _since(line)
        elif len(line) > 1 and line[1:].isdigit():
            (watched.add if line[0] == "+" else watched.discard)(int(line[1:]))
    watched = {pgid for pgid in watched if process_groups.alive(pgid)}
    if watched:
        _stop_groups(watched)
    for path in files:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
    if sweep_since is not None:
        unlink_all(orphaned_since(sweep_since))  # after the kills: nothing of the run holds them now


def _since(line: str) -> float | None:
    try:
        return float(line[2:]) if line.startswith("s+") else None
    except ValueError:
        return None


def _stop_groups(watched: set[int]) -> None:
    print(
        f"serve-with-monitoring orphan guard: launcher gone, stopping process groups {sorted(watched)}",
        file=sys.stderr,
        flush=True,
    )
    _signal_all(watched, signal.SIGTERM)
    deadline = time.monotonic() + _TERM_GRACE_S
    while time.monotonic() < deadline and any(process_groups.alive(pgid) for pgid in watched):
        time.sleep(0.1)
    _signal_all(watched, signal.SIGKILL)


if __name__ == "__main__":
    _guard_main()

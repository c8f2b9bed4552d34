"""Reaps orphans when the launcher is PID 1 (the ENTRYPOINT of a container without an init).

vLLM's grandchildren are re-parented to PID 1 when their parent dies; a PID 1 that never waits for
them fills the process table with zombies, and their process group never looks empty. Only orphans
are reaped here: the launcher's own children are left to their Popen objects, which need the status.
"""

from __future__ import annotations

import os
from collections.abc import Collection


def reap_orphans(own_children: Collection[int]) -> int:
    """Reaps every exited process that is not one of ours; returns how many."""
    reaped = 0
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return reaped
        if info is None or info.si_pid in own_children:
            return reaped  # nothing exited, or the first one is ours: its Popen reaps it on the next poll
        try:
            os.waitpid(info.si_pid, os.WNOHANG)
            reaped += 1
        except ChildProcessError:
            return reaped

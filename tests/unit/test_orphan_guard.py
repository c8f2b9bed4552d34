import os
import signal
import subprocess
import sys
import time

import psutil

FAKE_LAUNCHER = r"""
import subprocess, sys, time
from launcher.supervision.orphan_guard import OrphanGuard
guard = OrphanGuard()
guard.start()
child = subprocess.Popen(["sleep", "60"], start_new_session=True)
guard.watch(child.pid)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_sigkilled_launcher_leaves_no_process_group_behind():
    launcher = subprocess.Popen([sys.executable, "-c", FAKE_LAUNCHER], stdout=subprocess.PIPE, text=True)
    child_pid = int(launcher.stdout.readline())
    assert psutil.pid_exists(child_pid)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        try:
            if psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the child outlived its launcher")

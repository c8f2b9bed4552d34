"""As PID 1 of a new PID namespace (unshare, as root: a container without an init), orphans get reaped
and the launcher's own children are left for Popen."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.launcher_process import REPO_ROOT

SCRIPT = r"""
import os, subprocess, sys, time
from launcher.supervision.zombie_reaper import reap_orphans
assert os.getpid() == 1
# An orphan: a child that forks a grandchild and exits at once; the grandchild exits a moment later.
subprocess.run([sys.executable, "-c", "import os, time\nif os.fork() == 0:\n    time.sleep(0.3)\n    os._exit(0)"])
own = subprocess.Popen([sys.executable, "-c", "pass"])
time.sleep(1.0)
reaped = reap_orphans({own.pid})
own.wait()
zombies = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split()[2] == "Z"]
print(reaped, own.returncode, len(zombies))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_orphans_are_reaped_and_own_children_keep_their_status():
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reaped, own_code, zombies = map(int, result.stdout.split())
    assert reaped >= 1
    assert own_code == 0
    assert zombies == 0

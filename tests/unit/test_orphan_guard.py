import json
import mmap
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

from launcher.supervision import process_groups
from launcher.supervision.shared_memory_files import SHM_DIR, unlink_all
from tests.unit.test_shared_memory_cleanup import make_segment

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


# A launcher that starts a process group holding two /dev/shm segments (one mapped, one only open, as
# vLLM's engine and workers hold theirs), then tells the guard about the group and about the segments
# exactly as VllmChild._note_shared_memory does: what shared_memory_of() finds in the group's live pids.
SHARED_MEMORY_LAUNCHER = r"""
import json, subprocess, sys, time
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.process_groups import live_pids
from launcher.supervision.shared_memory_files import shared_memory_of
mapped, held = sys.argv[1], sys.argv[2]
guard = OrphanGuard()
guard.start()
engine = subprocess.Popen([sys.executable, "-c", '''
import mmap, os, sys, time
mapped, held = sys.argv[1], sys.argv[2]
descriptor = os.open(mapped, os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(descriptor, 4096)
mapping = mmap.mmap(descriptor, 4096)
os.close(descriptor)
holder = os.open(held, os.O_CREAT | os.O_RDWR, 0o600)
print("ready", flush=True)
time.sleep(60)
''', mapped, held], start_new_session=True, stdout=subprocess.PIPE, text=True)
guard.watch(engine.pid)
assert engine.stdout.readline().strip() == "ready"
told = sorted(str(path) for path in shared_memory_of(live_pids(engine.pid)))
for path in told:
    guard.watch_file(path)
print(json.dumps({"pgid": engine.pid, "told": told}), flush=True)
time.sleep(60)
"""


def make_segment_path() -> str:
    """A unique /dev/shm name, made by the run itself (as vLLM makes its own)."""
    return os.path.join(SHM_DIR, f"psm_swmtest{uuid.uuid4().hex[:8]}")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return all(member.zombie for member in process_groups.members(pgid))


def test_a_sigkilled_launcher_leaves_neither_the_group_nor_its_shared_memory_and_spares_other_segments():
    """docs/faults.md: the guard kills every group the launcher had and removes vLLM's shared memory. A segment
    nobody told it about stays, whether something still maps it or not."""
    mapped, held = make_segment_path(), make_segment_path()
    stranger = make_segment()  # not the run's: nobody maps it and nobody told the guard
    in_use = make_segment()  # not the run's, mapped by a live process (this one)
    in_use_file = open(in_use, "r+b")
    in_use_mapping = mmap.mmap(in_use_file.fileno(), 4096)
    launcher = subprocess.Popen(
        [sys.executable, "-c", SHARED_MEMORY_LAUNCHER, mapped, held], stdout=subprocess.PIPE, text=True
    )
    pgid = None
    try:
        report = json.loads(launcher.stdout.readline())
        pgid = report["pgid"]
        assert report["told"] == sorted([mapped, held])  # both were found in the group's /proc, and told
        assert os.path.exists(mapped) and os.path.exists(held)

        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not (
            _group_gone(pgid) and not os.path.exists(mapped) and not os.path.exists(held)
        ):
            time.sleep(0.1)

        assert _group_gone(pgid), "the process group outlived its launcher"
        assert not os.path.exists(mapped), "a segment the run mapped was left in /dev/shm"
        assert not os.path.exists(held), "a segment the run held open was left in /dev/shm"
        assert os.path.exists(stranger), "the guard removed a segment it was never told about"
        assert os.path.exists(in_use), "the guard removed a segment a live process maps"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if pgid is not None:
            process_groups.kill_group(pgid)
        in_use_mapping.close()
        in_use_file.close()
        unlink_all([Path(mapped), Path(held), Path(stranger), Path(in_use)])


# A launcher whose vLLM made a segment after the launcher's last look (still loading its model, say): the
# guard was told only when the run began, and sweeps what the run made.
SWEEPING_LAUNCHER = r"""
import subprocess, sys, time
from launcher.supervision.orphan_guard import OrphanGuard
segment = sys.argv[1]
guard = OrphanGuard()
guard.start()
guard.sweep_shared_memory_since(time.time())
engine = subprocess.Popen([sys.executable, "-c", '''
import mmap, os, sys, time
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(descriptor, 4096)
mapping = mmap.mmap(descriptor, 4096)
print("ready", flush=True)
time.sleep(60)
''', segment], start_new_session=True, stdout=subprocess.PIPE, text=True)
guard.watch(engine.pid)
assert engine.stdout.readline().strip() == "ready"
print(engine.pid, flush=True)
time.sleep(60)
"""


def test_segments_the_launcher_never_saw_are_swept_and_older_or_held_ones_spared():
    unseen = make_segment_path()
    older = make_segment()  # made before the run began: not the run's
    in_use = make_segment()
    in_use_file = open(in_use, "r+b")
    in_use_mapping = mmap.mmap(in_use_file.fileno(), 4096)
    time.sleep(1.2)  # the sweep allows a second of clock skew between a file's ctime and the run's start
    launcher = subprocess.Popen([sys.executable, "-c", SWEEPING_LAUNCHER, unseen], stdout=subprocess.PIPE, text=True)
    pgid = None
    try:
        pgid = int(launcher.stdout.readline())
        assert os.path.exists(unseen)
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and os.path.exists(unseen):
            time.sleep(0.1)
        assert _group_gone(pgid)
        assert not os.path.exists(unseen), "a segment the run made after the launcher's last look was left"
        assert os.path.exists(older), "the sweep removed a segment made before the run"
        assert os.path.exists(in_use), "the sweep removed a segment a live process maps"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if pgid is not None:
            process_groups.kill_group(pgid)
        in_use_mapping.close()
        in_use_file.close()
        unlink_all([Path(unseen), Path(older), Path(in_use)])

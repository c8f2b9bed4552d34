"""The launcher's status file is written on a thread of its own: a disk that hangs (a stuck NFS mount, a
device timing out) never holds up the supervision loop, and only the newest snapshot is worth writing."""

import threading
import time

from launcher.states import SupervisorStatus
from launcher.supervision import supervisor
from launcher.supervision.supervisor import StatusWriter

HUNG_S = 10.0  # how long the disk hangs: a loop that waited on it would wait this long


def test_a_hung_disk_never_holds_up_the_loop_and_the_newest_status_is_written_once_it_answers(tmp_path, monkeypatch):
    release = threading.Event()
    written: list[float] = []

    def hung_write(path, status):
        release.wait(HUNG_S)
        written.append(status.updated_at)

    monkeypatch.setattr(supervisor, "write_status", hung_write)
    writer = StatusWriter(tmp_path / "supervisor.json")
    try:
        for n in range(50):  # the loop's submissions while the disk hangs
            started = time.monotonic()
            writer.submit(SupervisorStatus(launcher_pid=1, updated_at=float(n)))
            # Far from HUNG_S: the loop goes on at once, every time.
            assert time.monotonic() - started < HUNG_S / 3, f"submission {n} waited for the disk"
            time.sleep(0.001)
    finally:
        release.set()
        writer.close(SupervisorStatus(launcher_pid=1, updated_at=99.0))
    # The snapshot in hand when the disk hung, then the newest: the stale ones in between were dropped.
    assert written[-1] == 99.0 and len(written) <= 3, written

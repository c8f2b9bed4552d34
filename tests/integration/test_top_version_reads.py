"""`top` asks the shared real vLLM for /version once per start of vLLM, not at every refresh, counted where
it shows: vLLM's own access log (the launcher quiets it only for /health and /metrics)."""

import dataclasses
import time

import pytest

from launcher.states import read_status
from launcher.supervision.status_file import write_status
from launcher.top.sources import Sources, read
from tests.support.launcher_process import free_port

pytestmark = pytest.mark.vllm

VERSION_REQUEST = '"GET /version HTTP/'


class VersionRequests:
    """The /version requests vLLM logs in the state dir's vllm.log from now on."""

    def __init__(self, server) -> None:
        self._log = server.state_dir / "logs" / "vllm.log"
        self._offset = self._log.stat().st_size

    def _count(self) -> int:
        with self._log.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace").count(VERSION_REQUEST)

    def settled(self) -> int:
        """The count once the first line is in (vLLM logs a request after answering it), and a while after."""
        deadline = time.monotonic() + 10
        while self._count() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # any line beyond the expected ones would show by now
        return self._count()


def _versions(sources: Sources, times: int) -> list[str | None]:
    return [read(sources).vllm_version for _ in range(times)]


def _served_version(server) -> str:
    """vLLM's version, read once; its access line is in the log before a test counts from there."""
    requests = VersionRequests(server)
    version = read(Sources(vllm_url=server.base_url)).vllm_version
    assert version, "the shared vLLM did not answer /version"
    assert requests.settled() == 1, f"no {VERSION_REQUEST} line in vLLM's log for a /version read"
    return version


def test_without_a_launcher_status_the_version_is_read_once_per_start_of_vllm(server):
    version = _served_version(server)
    requests = VersionRequests(server)
    sources = Sources(vllm_url=server.base_url)  # vLLM's process_start_time_seconds tells its starts apart
    assert _versions(sources, 3) == [version] * 3
    assert requests.settled() == 1


def test_with_a_launcher_the_version_is_read_again_only_when_its_vllm_child_changes(server, tmp_path):
    version = _served_version(server)
    state_file = server.state_dir / "supervisor.json"
    requests = VersionRequests(server)
    sources = Sources(vllm_url=server.base_url, state_file=state_file)
    assert _versions(sources, 3) == [version] * 3
    assert requests.settled() == 1

    # A launcher status of our own whose vLLM child is another start: the same vLLM answers, the child decides
    status = read_status(state_file)
    child = status.child("vllm")
    moved = dataclasses.replace(child, pid=child.pid + 1, started_at=(child.started_at or 0.0) + 1)
    own_state_file = tmp_path / "supervisor.json"
    write_status(own_state_file, dataclasses.replace(status, children=[moved], updated_at=time.time()))
    requests = VersionRequests(server)
    assert _versions(dataclasses.replace(sources, state_file=own_state_file), 3) == [version] * 3
    assert requests.settled() == 1


def test_a_failed_version_read_is_tried_again_at_the_next_refresh(server):
    version = _served_version(server)
    state_file = server.state_dir / "supervisor.json"
    requests = VersionRequests(server)
    # The same launcher child throughout, first behind a URL where nothing listens: the read fails
    unreachable = Sources(vllm_url=f"http://127.0.0.1:{free_port()}", state_file=state_file)
    assert _versions(unreachable, 1) == [None]
    reachable = dataclasses.replace(unreachable, vllm_url=server.base_url)  # the same memo
    assert reachable.version_memo is unreachable.version_memo
    assert _versions(reachable, 3) == [version] * 3
    assert requests.settled() == 1

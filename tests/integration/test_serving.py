"""The supervised server serves, reports metrics, and comes back after its engine dies."""

import re
import signal
import time

import psutil
import pytest

from tests.support.launcher_process import http_get, http_post_json

pytestmark = pytest.mark.vllm


def test_completions_work_through_the_supervised_server(server):
    reply = http_post_json(
        server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "def main", "max_tokens": 8}
    )
    assert reply["usage"]["completion_tokens"] == 8


def test_chat_completions_work_through_the_supervised_server(server):
    reply = http_post_json(
        server.base_url + "/v1/chat/completions",
        {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
    )
    assert reply["choices"][0]["message"]["role"] == "assistant"


def test_metrics_carry_vllm_series_with_the_model_name(server):
    status, text = http_get(server.base_url + "/metrics")
    assert status == 200
    assert re.search(r'^vllm:num_requests_running\{[^}]*model_name="tiny-llama"', text, re.M)
    assert re.search(r'^vllm:generation_tokens_total\{[^}]*model_name="tiny-llama"', text, re.M)


def test_the_seed_flags_reach_vllm_translated(server):
    cmdline = psutil.Process(server.vllm_pid()).cmdline()
    assert "--no-enable-log-requests" in cmdline
    assert "--disable-log-requests" not in cmdline
    assert cmdline[cmdline.index("--max-model-len") + 1] == "2048"
    assert cmdline[cmdline.index("--host") + 1] == "127.0.0.1"
    assert any(
        "translating --disable-log-requests to --no-enable-log-requests" in line for line in server.launcher_lines()
    )


def test_vllm_runs_in_its_own_process_group_and_logs_to_the_state_dir(server):
    pid = server.vllm_pid()
    assert psutil.Process(pid).ppid() == server.process.pid
    import os

    assert os.getpgid(pid) == pid
    log = (server.state_dir / "logs" / "vllm.log").read_text()
    assert "Application startup complete" in log or "Starting vLLM" in log


def test_killing_the_engine_core_is_detected_and_the_server_comes_back(server):
    api_pid = server.vllm_pid()
    engines = [
        p
        for p in psutil.Process(api_pid).children(recursive=True)
        if " ".join(p.cmdline()).startswith("VLLM::EngineCore")
    ]
    assert engines, "no EngineCore process found"
    restarts_before = server.supervisor_state()["children"][0]["restarts_total"]
    engines[0].send_signal(signal.SIGKILL)

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = server.supervisor_state()["children"][0]
        if state["restarts_total"] > restarts_before and state["state"] == "healthy":
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the server did not come back:\n" + "\n".join(server.launcher_lines()[-20:]))
    assert state["pid"] != api_pid
    assert not psutil.pid_exists(api_pid) or psutil.Process(api_pid).status() == psutil.STATUS_ZOMBIE
    reply = http_post_json(server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 2})
    assert reply["usage"]["completion_tokens"] == 2
    # docs/faults.md: the launcher names the lost EngineCore itself (from its own watch on the engine's pid),
    # rather than waiting for the API server to notice and exit; then it restarts with backoff.
    lines = server.launcher_lines()
    lost = [line for line in lines if "vLLM lost its EngineCore (pid " in line and str(engines[0].pid) in line]
    assert any(line.endswith("; stopping it") for line in lost), lines[-20:]
    assert any(re.search(r"; restarting in \d+ s", line) for line in lost), lines[-20:]

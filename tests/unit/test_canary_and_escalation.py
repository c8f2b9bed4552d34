"""The canary for an idle engine, with its sender injected (what it sends over HTTP, to which DP rank and with
which key, is the real vLLM's business: tests/integration/test_incidents.py and test_multiprocess_vllm.py), and
the escalation decision (stall after stall, a GPU that needs a reset) of vLLM's supervised child."""

import threading
import time

from launcher.supervision.child_spec import Timing
from launcher.supervision.restart_policy import Exit
from launcher.vllm_server.canary import Canary
from launcher.vllm_server.child import VllmChild
from launcher.vllm_server.command import VllmInvocation
from launcher.vllm_server.metrics_page import parse_metrics_page
from launcher.vllm_server.progress import ProgressWatch
from launcher.vllm_server.target import VllmTarget


class RecordingSender:
    """Records the engine each canary is sent to; answers `outcome`, or only once released when `hang`."""

    def __init__(self, outcome: str = "ok", hang: frozenset[str | None] = frozenset()) -> None:
        self.sent: list[str | None] = []
        self.release = threading.Event()
        self._outcome = outcome
        self._hang = hang

    def __call__(self, engine: str | None) -> str:
        self.sent.append(engine)
        if engine in self._hang:
            self.release.wait(10)
        return self._outcome


def page(running: int = 0, finished: int = 0, engine: str = "0") -> str:
    return (
        f'vllm:num_requests_running{{engine="{engine}",model_name="m"}} {running}\n'
        f'vllm:num_requests_waiting{{engine="{engine}",model_name="m"}} 0\n'
        f'vllm:request_success_total{{engine="{engine}",finished_reason="stop",model_name="m"}} {finished}\n'
    )


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met")


def test_one_canary_after_the_interval_of_idleness_to_the_only_engine_without_naming_it():
    sender = RecordingSender()
    canary = Canary(sender, interval_s=60)
    canary.observe(parse_metrics_page(page()), now=0.0)
    canary.observe(parse_metrics_page(page()), now=59.0)
    assert sender.sent == []
    canary.observe(parse_metrics_page(page()), now=60.0)
    wait_until(lambda: canary.report().ok == 1)
    assert sender.sent == [None]  # one engine takes every request: no rank header
    assert canary.report().last_latency_s is not None and not canary.in_flight()


def test_never_while_real_traffic_flows():
    sender = RecordingSender()
    canary = Canary(sender, interval_s=10)
    for second in range(0, 100, 5):  # one long request pending, nothing finishing
        canary.observe(parse_metrics_page(page(running=1, finished=0)), now=second)
    for second in range(100, 200, 5):  # nothing pending, but requests finishing between readings
        canary.observe(parse_metrics_page(page(running=0, finished=second)), now=second)
    time.sleep(0.2)
    assert sender.sent == []


def test_a_failed_canary_is_counted_and_off_means_off():
    sender = RecordingSender(outcome="HTTP 500")
    canary = Canary(sender, interval_s=1)
    canary.observe(parse_metrics_page(page()), now=0.0)
    canary.observe(parse_metrics_page(page()), now=1.0)
    wait_until(lambda: canary.report().failed == 1)
    assert canary.report().last_outcome == "HTTP 500"
    off = Canary(sender, interval_s=0)
    off.observe(parse_metrics_page(page()), now=0.0)
    off.observe(parse_metrics_page(page()), now=1e6)
    time.sleep(0.1)
    assert len(sender.sent) == 1


def test_a_canary_stuck_in_a_frozen_engine_is_a_stall():
    """The engine's own gauges stay at 0 when it froze idle: the canary in flight is the pending work."""
    sender = RecordingSender(hang=frozenset({None}))
    try:
        canary = Canary(sender, interval_s=1)
        watch = ProgressWatch(stall_timeout_s=8)
        idle = parse_metrics_page(page())
        for now in (0.0, 1.0):
            canary.observe(idle, now)
            assert not watch.observe(idle, now, now, canary.pending_engines()).stalled
        wait_until(lambda: sender.sent)
        assert not watch.observe(idle, 5.0, 5.0, canary.pending_engines()).stalled
        verdict = watch.observe(idle, 9.5, 9.5, canary.pending_engines())
        assert verdict.stalled and "the launcher's canary request pending" in verdict.detail
    finally:
        sender.release.set()


def test_each_dp_rank_gets_its_own_canary_and_only_the_frozen_ones_stall():
    """Rank 1 froze idle while rank 0 serves: rank 0's traffic keeps no canary from rank 1, and rank 1's
    canary, addressed to it, is the work its gauges never show."""
    sender = RecordingSender(hang=frozenset({"1"}))
    try:
        canary = Canary(sender, interval_s=2)
        watch = ProgressWatch(stall_timeout_s=8)
        verdict = None
        for second in range(0, 14):
            busy = page(running=1, finished=second, engine="0") + page(engine="1")
            reading = parse_metrics_page(busy)
            canary.observe(reading, now=float(second))
            verdict = watch.observe(reading, float(second), float(second), canary.pending_engines())
            if second < 9:  # rank 1 last idle at 1 s, its canary sent at 2 s: the 8 s run out at 9 s
                assert not verdict.stalled, second
            time.sleep(0.01)
        assert sender.sent == ["1"]  # never to the busy rank 0
        assert canary.pending_engines() == {"1"}
        assert verdict.stalled and "on engine 1" in verdict.detail, verdict
    finally:
        sender.release.set()


def test_no_second_canary_while_the_first_is_in_flight():
    """One at a time per engine: while the last one hangs in a frozen engine, no other is sent, however long
    the server stays idle (a pile of them would be one more thread and connection per interval)."""
    sender = RecordingSender(hang=frozenset({None}))
    try:
        canary = Canary(sender, interval_s=1)
        for second in range(0, 30):
            canary.observe(parse_metrics_page(page()), now=float(second))
        wait_until(lambda: sender.sent)
        time.sleep(0.2)  # time for any further canary to be sent
        assert sender.sent == [None]
        assert canary.in_flight()
    finally:
        sender.release.set()


def _vllm_child(tmp_path, **kwargs) -> VllmChild:
    target = VllmTarget("m", "127.0.0.1", True, 9, False, None, "m", 1, None)
    invocation = VllmInvocation((), {}, target, tmp_path, tmp_path / "tmp", None, False)
    timing = Timing(startup_timeout_s=60, health_interval_s=5, health_failures=3)
    return VllmChild(invocation, timing, tmp_path / "vllm.log", guard=None, stall_timeout_s=8, **kwargs)


STALL = Exit(code=None, reason="stalled", ever_healthy=True, cause="stalled")


def test_stall_after_stall_without_a_finished_request_escalates_after_max_stall_restarts(tmp_path):
    child = _vllm_child(tmp_path, max_stall_restarts=2)
    assert child.escalation(STALL) is None  # the first stall: restart
    assert child.escalation(STALL) is None  # stalled again, nothing finished in between: 1 in a row
    message = child.escalation(STALL)  # 2 in a row
    assert message and "stalled again after 2 stall restart(s) in a row" in message


def test_a_run_that_finished_a_request_or_a_crash_in_between_starts_the_count_again(tmp_path):
    child = _vllm_child(tmp_path, max_stall_restarts=1)
    assert child.escalation(STALL) is None
    child._last_run_finished_requests = True  # the run after the restart served a request, then stalled
    assert child.escalation(STALL) is None
    child._last_run_finished_requests = False
    assert child.escalation(Exit(code=1, reason="exited", ever_healthy=True)) is None
    assert child.escalation(STALL) is None
    assert child.escalation(STALL) is not None  # stall, then stall with nothing finished: 1 >= 1


def test_a_gpu_that_needs_a_reset_is_never_restarted_into(tmp_path):
    class Health:
        def needs_a_person(self):
            return "GPU 0 reported XID 79 (fell off the bus) 1 time(s)"

    child = _vllm_child(tmp_path, gpu_health=Health())
    assert child.escalation(Exit(code=1, reason="exited", ever_healthy=True)) == (
        "GPU 0 reported XID 79 (fell off the bus) 1 time(s)"
    )

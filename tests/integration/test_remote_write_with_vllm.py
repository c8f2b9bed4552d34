"""Nothing lost across an outage of the central store while vLLM serves (issue 28, item 2).

The launcher itself runs vLLM, the exporter and its own Prometheus with --remote-write to a receiver Prometheus
(deploy/fleet/prometheus-central.yml, --web.enable-remote-write-receiver). The receiver is stopped for about two
and a half minutes while requests keep vLLM's counters moving, then started again on the same port and storage.
Once the sender has caught up, the receiver holds the raw samples of vllm:generation_tokens_total over the
outage, sample for sample as the sender's own Prometheus took them, and the sender's RemoteWriteBehind went
pending during the outage. Firing takes its 5-minute `for` on top of the 2-minute lag, longer than this test
runs; promtool's cases (observability/prometheus/tests/remote_write_test.yml) hold the firing.
tests/integration/test_remote_write_outage.py checks the same pipe without vLLM."""

import time

import pytest

from observability.exporter.labels import default_hostname
from tests.support.launcher_process import LauncherProcess, free_port, http_get, http_post_json
from tests.support.metrics_text import parse_metrics
from tests.support.prometheus_api import PrometheusApi
from tests.support.remote_write_pair import largest_gap, raw_samples, receiver_process

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]

SCRAPE_INTERVAL_S = 2
MOST_GAP_S = 3 * SCRAPE_INTERVAL_S
# RemoteWriteBehind's lag bound is 120 s, read from the `prometheus` job's 30 s scrape: pending by about 150 s.
OUTAGE_S = 150
OUTAGE_AT_MOST_S = 200
REQUEST_EVERY_S = 1.5
CATCH_UP_AT_MOST_S = 180
CLUSTER = "test"
COUNTER = "vllm:generation_tokens_total"


def _retried_samples(prometheus_url: str) -> float:
    found = parse_metrics(http_get(prometheus_url + "/metrics")[1])
    return sum(value for _, value in found.get("prometheus_remote_storage_samples_retried_total", []))


def _within(samples: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    return [(at, value) for at, value in samples if start < at <= end]


def test_the_receiver_holds_every_vllm_sample_of_an_outage(tmp_path, cache_home):
    host = default_hostname()
    receiver_port = free_port()
    receiver = receiver_process(tmp_path, receiver_port)
    launcher = LauncherProcess(
        [
            *("--max-model-len", "2048", "--stack", "native", "--scrape-interval", str(SCRAPE_INTERVAL_S)),
            *("--remote-write", f"http://127.0.0.1:{receiver_port}/api/v1/write", "--cluster", CLUSTER),
        ],
        tmp_path / "launcher",
        cache_home,
    )
    try:
        receiver.start()
        launcher.start()
        launcher.wait_healthy()
        sender = PrometheusApi(launcher.prometheus_url)
        completion = {"model": "tiny-llama", "prompt": "x", "max_tokens": 4}
        http_post_json(launcher.base_url + "/v1/completions", completion)
        remote_selector = f'{COUNTER}{{host="{host}", cluster="{CLUSTER}"}}'
        arrived = receiver.api.wait_for(remote_selector, timeout=90)
        assert arrived[0]["metric"]["instance"] == f"{host}:{launcher.port}"  # the loopback address renamed

        receiver.stop()
        outage_start = time.time()
        requests, behind = 0, []

        def lasted() -> float:
            return time.time() - outage_start

        while lasted() < OUTAGE_S or (not behind and lasted() < OUTAGE_AT_MOST_S):
            http_post_json(launcher.base_url + "/v1/completions", completion)
            requests += 1
            behind = behind or sender.query('ALERTS{alertname="RemoteWriteBehind"}')
            time.sleep(REQUEST_EVERY_S)
        assert _retried_samples(launcher.prometheus_url) > 0, "the sender never noticed the outage"
        outage_end = time.time()
        receiver.start()

        # Caught up: the receiver holds a sample taken after the outage, and nothing between is missing.
        deadline = time.monotonic() + CATCH_UP_AT_MOST_S
        while True:
            window = int(time.time() - outage_start) + 30
            received = raw_samples(receiver.api, remote_selector, window)
            gap = largest_gap([at for at, _ in received], outage_start - 5, outage_end)
            if (received and received[-1][0] > outage_end and gap <= MOST_GAP_S) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert received and received[-1][0] > outage_end, f"nothing newer than the outage within {CATCH_UP_AT_MOST_S} s"
        assert gap <= MOST_GAP_S, f"a gap of {gap:.1f} s in the outage window ({outage_end - outage_start:.0f} s)"

        taken = raw_samples(sender, f'{COUNTER}{{job="vllm"}}', int(time.time() - outage_start) + 30)
        taken, received = _within(taken, outage_start - 5, outage_end), _within(received, outage_start - 5, outage_end)
        increase = taken[-1][1] - taken[0][1]
        assert increase > 0, f"{requests} requests during the outage and the counter did not move"
        assert received[-1][1] - received[0][1] == increase
        assert received == taken  # sample for sample, timestamps included

        assert behind, "RemoteWriteBehind never went pending in the outage"
        assert {alert["metric"]["alertstate"] for alert in behind} <= {"pending", "firing"}
    finally:
        launcher.stop()
        receiver.stop()

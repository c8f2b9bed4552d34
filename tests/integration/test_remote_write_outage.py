"""Nothing lost across an outage of the central store: two real Prometheus processes (Debian's 2.42), no vLLM.

The sender runs the prometheus.yml the launcher generates for --remote-write, scraping itself; the receiver runs
deploy/fleet/prometheus-central.yml with --web.enable-remote-write-receiver. The receiver is stopped for fifteen
seconds and started again on the same port and storage: it then holds the samples of the outage window, with the
host external label and the host's name in `instance`, and no gap longer than a few scrape intervals.
tests/integration/test_remote_write_with_vllm.py does the same with the launcher itself and vLLM serving."""

import time

import pytest

from observability.exporter.labels import default_hostname
from tests.support.launcher_process import free_port, http_get
from tests.support.prometheus_process import PrometheusProcess
from tests.support.remote_write_pair import largest_gap, raw_samples, receiver_process, sender_config

SCRAPE_INTERVAL_S = 1
OUTAGE_S = 15
MOST_GAP_S = 4 * SCRAPE_INTERVAL_S


@pytest.fixture
def pair(tmp_path):
    receiver_port, sender_port = free_port(), free_port()
    central = receiver_process(tmp_path, receiver_port)
    # The sender's only target is itself, listed where the launcher lists its exporter: that job is scraped
    # at the global interval (the `prometheus` job only every 30 s).
    config = sender_config(
        tmp_path / "state",
        sender_port,
        SCRAPE_INTERVAL_S,
        f"http://127.0.0.1:{receiver_port}/api/v1/write",
        "test-cluster",
        {"exporter": [f"127.0.0.1:{sender_port}"]},
    )
    sender = PrometheusProcess("sender", tmp_path, sender_port, config)
    try:
        yield sender, central
    finally:
        sender.stop()
        central.stop()


def test_the_receiver_holds_the_samples_of_an_outage(pair):
    sender, receiver = pair
    host = default_hostname()
    selector = f'up{{job="swm-exporter", host="{host}", cluster="test-cluster"}}'
    receiver.start()
    sender.start()
    arrived = receiver.api.wait_for(selector, timeout=60)
    assert arrived[0]["metric"]["instance"] == f"{host}:{sender.port}"  # the loopback address renamed
    time.sleep(2 * MOST_GAP_S)  # the receiver must hold the seconds before the outage that the gap check reads

    receiver.stop()
    outage_start = time.time()
    time.sleep(OUTAGE_S)
    _, page = http_get(f"http://127.0.0.1:{sender.port}/metrics")
    retried = [line for line in page.splitlines() if line.startswith("prometheus_remote_storage_samples_retried_total")]
    assert retried and float(retried[0].rsplit(" ", 1)[1]) > 0, "the sender never noticed the outage"
    receiver.start()
    outage_end = time.time()

    deadline = time.monotonic() + 45
    while True:  # the range reaches back past the outage at every try: it ends now
        stamps = [at for at, _ in raw_samples(receiver.api, selector, int(time.time() - outage_start) + 30)]
        gap = largest_gap(stamps, outage_start - 5, outage_end)
        if (stamps and stamps[-1] > outage_end and gap <= MOST_GAP_S) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert stamps and stamps[-1] > outage_end, "the receiver got nothing after it came back"
    assert gap <= MOST_GAP_S, f"a gap of {gap:.1f} s in the {OUTAGE_S} s outage window"
    in_outage = [at for at in stamps if outage_start < at < outage_end]
    assert len(in_outage) >= (outage_end - outage_start) / SCRAPE_INTERVAL_S - MOST_GAP_S

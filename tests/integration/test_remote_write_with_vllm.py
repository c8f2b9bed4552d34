"""Nothing lost across an outage of the central store while vLLM serves (issue 28, item 2).

The launcher itself runs vLLM, the exporter and its own Prometheus with --remote-write to a receiver Prometheus
(deploy/fleet/prometheus-central.yml, --web.enable-remote-write-receiver). The receiver is stopped for half a minute
or more while requests keep vLLM's counters moving, then started again on the same port and storage. Once the
sender has caught up, the receiver holds the raw samples of vllm:generation_tokens_total over the outage, sample
for sample as the sender's own Prometheus took them, and RemoteWriteBehind's expression saw the sender fall
behind. The shipped alert waits for a 2-minute lag and then 5 minutes more: the test loads its expression, as
shipped, with a lag bound of LAG_BOUND_S and no `for` (fast_remote_write_rules), and promtool's cases
(observability/prometheus/tests/remote_write_test.yml) hold the shipped bound and its firing.
tests/integration/test_remote_write_outage.py checks the same pipe without vLLM."""

import time
from pathlib import Path

import pytest
import yaml

from observability.exporter.labels import default_hostname
from tests.support.launcher_process import REPO_ROOT, LauncherProcess, free_port, http_get, http_post_json
from tests.support.metrics_text import parse_metrics
from tests.support.prometheus_api import PrometheusApi
from tests.support.remote_write_pair import largest_gap, raw_samples, receiver_process

pytestmark = [pytest.mark.vllm, pytest.mark.own_server]

SCRAPE_INTERVAL_S = 2
MOST_GAP_S = 3 * SCRAPE_INTERVAL_S
SHIPPED_LAG_BOUND = ") > 120\n"
# The lag is read from the `prometheus` job's scrape, every 30 s: over LAG_BOUND_S by 45 s at the latest.
LAG_BOUND_S = 10
OUTAGE_S = 30
OUTAGE_AT_MOST_S = 90
REQUEST_EVERY_S = 1.5
CATCH_UP_AT_MOST_S = 180
CLUSTER = "test"
COUNTER = "vllm:generation_tokens_total"


def _retried_samples(prometheus_url: str) -> float:
    found = parse_metrics(http_get(prometheus_url + "/metrics")[1])
    return sum(value for _, value in found.get("prometheus_remote_storage_samples_retried_total", []))


def fast_remote_write_rules(directory: Path) -> Path:
    """RemoteWriteBehind as shipped, renamed, with a lag bound of LAG_BOUND_S and no `for`, evaluated every 5 s."""
    shipped = yaml.safe_load((REPO_ROOT / "observability" / "prometheus" / "rules" / "remote_write.yml").read_text())
    rules = [rule for group in shipped["groups"] for rule in group["rules"]]
    [rule] = [rule for rule in rules if rule.get("alert") == "RemoteWriteBehind"]
    assert SHIPPED_LAG_BOUND in rule["expr"], rule["expr"]
    fast = {
        "alert": "RemoteWriteBehindFast",
        "expr": rule["expr"].replace(SHIPPED_LAG_BOUND, f") > {LAG_BOUND_S}\n"),
        "labels": rule["labels"],
    }
    path = directory / "fast_remote_write.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "test-fast-remote-write", "interval": "5s", "rules": [fast]}]}))
    return path


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
            *("--extra-rules", str(fast_remote_write_rules(tmp_path))),
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
            behind = behind or sender.query('ALERTS{alertname="RemoteWriteBehindFast"}')
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

        assert behind, f"RemoteWriteBehind's expression never saw a lag over {LAG_BOUND_S} s in the outage"
        assert behind[0]["metric"]["url"] == f"http://127.0.0.1:{receiver_port}/api/v1/write"
    finally:
        launcher.stop()
        receiver.stop()

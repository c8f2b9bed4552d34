"""Nothing lost across an outage of the central store: two real Prometheus processes (Debian's 2.42), no vLLM.

The sender runs the prometheus.yml the launcher generates for --remote-write, scraping itself; the receiver runs
deploy/fleet/prometheus-central.yml with --web.enable-remote-write-receiver. The receiver is stopped for half a
minute and started again on the same port and storage: it then holds the samples of the outage window, with the
host external label and the host's name in `instance`, and no gap longer than a few scrape intervals."""

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.prometheus_child import targets_dir, write_native_config
from launcher.stack.prometheus_targets import write_target_file
from launcher.state_layout import StateLayout
from observability.exporter.labels import default_hostname
from tests.support.launcher_process import REPO_ROOT, free_port, http_get
from tests.support.prometheus_api import PrometheusApi

PROMETHEUS = Path(sys.executable).parent / "prometheus"
CENTRAL = REPO_ROOT / "deploy" / "fleet" / "prometheus-central.yml"
SCRAPE_INTERVAL_S = 1
OUTAGE_S = 30
MOST_GAP_S = 4 * SCRAPE_INTERVAL_S


class Prometheus:
    def __init__(self, name: str, directory: Path, port: int, config: Path, *flags: str) -> None:
        self.name, self.port = name, port
        self.command = [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / (name + '-data')}",
            f"--web.listen-address=127.0.0.1:{port}",
            *flags,
        ]
        self.log = directory / f"{name}.log"
        self.api = PrometheusApi(f"http://127.0.0.1:{port}")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http_get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a sender flushing to a receiver that is gone waits a minute
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def pair(tmp_path):
    receiver_port, sender_port = free_port(), free_port()
    central = yaml.safe_load(CENTRAL.read_text())
    central["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{receiver_port}"]}]
    central_path = tmp_path / "central.yml"
    central_path.write_text(yaml.safe_dump(central))
    receiver = Prometheus("receiver", tmp_path, receiver_port, central_path, "--web.enable-remote-write-receiver")

    argv = [
        "--state-dir",
        str(tmp_path / "state"),
        "--prometheus-port",
        str(sender_port),
        "--scrape-interval",
        str(SCRAPE_INTERVAL_S),
        "--remote-write",
        f"http://127.0.0.1:{receiver_port}/api/v1/write",
        "--cluster",
        "test-cluster",
    ]
    settings = merge_settings(parse_command_line(argv))
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    sender_config = write_native_config(settings, layout)
    # The sender's only target is itself, listed where the launcher lists its exporter: that job is scraped
    # at the global interval (the `prometheus` job only every 30 s).
    targets = targets_dir(layout)
    write_target_file(targets / "exporter.json", [f"127.0.0.1:{sender_port}"])
    for name in ("vllm.json", "prometheus.json", "alertmanager.json"):
        write_target_file(targets / name, [])
    sender = Prometheus("sender", tmp_path, sender_port, sender_config)
    try:
        yield sender, receiver
    finally:
        sender.stop()
        receiver.stop()


def raw_samples(api: PrometheusApi, selector: str, seconds: int) -> list[float]:
    """The timestamps of the receiver's raw samples of one series over the last `seconds`: no lookback filling."""
    result = api.query(f"{selector}[{seconds}s]")
    assert len(result) <= 1, result
    return [float(at) for at, _ in result[0]["values"]] if result else []


def largest_gap(stamps: list[float], start: float, end: float) -> float:
    inside = [start, *[at for at in stamps if start < at < end], end]
    return max(later - earlier for earlier, later in itertools.pairwise(inside))


def test_the_receiver_holds_the_samples_of_an_outage(pair):
    sender, receiver = pair
    host = default_hostname()
    selector = f'up{{job="swm-exporter", host="{host}", cluster="test-cluster"}}'
    receiver.start()
    sender.start()
    arrived = receiver.api.wait_for(selector, timeout=60)
    assert arrived[0]["metric"]["instance"] == f"{host}:{sender.port}"  # the loopback address renamed

    receiver.stop()
    outage_start = time.time()
    time.sleep(OUTAGE_S)
    _, page = http_get(f"http://127.0.0.1:{sender.port}/metrics")
    retried = [line for line in page.splitlines() if line.startswith("prometheus_remote_storage_samples_retried_total")]
    assert retried and float(retried[0].rsplit(" ", 1)[1]) > 0, "the sender never noticed the outage"
    receiver.start()
    outage_end = time.time()

    window = int(time.time() - outage_start) + 30
    deadline = time.monotonic() + 45
    while True:
        stamps = raw_samples(receiver.api, selector, window)
        gap = largest_gap(stamps, outage_start - 5, outage_end)
        if (stamps and stamps[-1] > outage_end and gap <= MOST_GAP_S) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert stamps and stamps[-1] > outage_end, "the receiver got nothing after it came back"
    assert gap <= MOST_GAP_S, f"a gap of {gap:.1f} s in the {OUTAGE_S} s outage window"
    in_outage = [at for at in stamps if outage_start < at < outage_end]
    assert len(in_outage) >= (outage_end - outage_start) / SCRAPE_INTERVAL_S - MOST_GAP_S

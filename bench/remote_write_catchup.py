"""Remote write after an outage of the central store: how long the sender takes to catch up, and what the
catch-up costs it in CPU and memory against the same Prometheus without remote write, side by side.

    .venv/bin/python -m bench.remote_write_catchup [--rounds 5] [--outage 60] [--steady 30] [--scrape-interval 5]
                                                   [--vllm-url URL] [--state-dir DIR] [--request-every 2]

Three real Prometheus processes (.venv/bin/prometheus). The receiver runs deploy/fleet/prometheus-central.yml
with --web.enable-remote-write-receiver. Two senders run the prometheus.yml the launcher generates (the shipped
rules, external labels, the same scrape interval): "remote_write" with --remote-write to the receiver, and
"baseline" without it. Both scrape the same targets, as a host's Prometheus does: themselves (every 30 s), an
exporter (`python -m launcher exporter`, started here) and, with --vllm-url or --state-dir, a running vLLM
(--state-dir: that launcher's exporter and vLLM, from its target files), which then gets one small completion
every --request-every seconds throughout so that its counters move.

Each round: a steady window with the receiver up, then the receiver stopped (SIGTERM, storage kept) for --outage
seconds, then started again on the same port and storage. The catch-up runs from the receiver's /-/ready until
both (a) the receiver holds the exporter's `up` sample that the sender took last before the restart, and (b)
the sender's own /metrics shows the queue drained: its newest sent sample is from the restart or later, and
no more than one batch (max_samples_per_send per shard) is pending, which is what a queue in step holds
between sends. CPU seconds and peak RSS of both senders are measured over each phase; during the catch-up both
senders' /metrics are read at the same rate, so that the polling costs them alike. The round then counts the
exporter's `up` samples of the outage window that the sender holds and the receiver does not (expected: 0).
Prints one JSON document (medians with min-max over the rounds, and per-round ratios against the baseline);
docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

from bench.stats import log_round, machine, summary
from observability.exporter.labels import default_hostname
from tests.support.launcher_process import REPO_ROOT, free_port, http_get
from tests.support.metrics_text import parse_metrics
from tests.support.prometheus_process import PROMETHEUS, PrometheusProcess
from tests.support.remote_write_pair import largest_gap, raw_samples, receiver_process, sender_config

CLUSTER = "bench"
SENDERS = ("remote_write", "baseline")
POLL_S = 0.25
RSS_EVERY_S = 0.5
WATCHED = 'up{job="swm-exporter"}'


def cpu_seconds(process: psutil.Process) -> float:
    """By the scheduler's own accounting (nanoseconds, summed over the threads), not cpu_times' 10 ms tick: a
    catch-up of a few seconds costs a sender tens of milliseconds. Go keeps its threads, so none is lost."""
    total = 0
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended just now
    return total / 1e9


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


class Phase:
    """CPU seconds and peak RSS of each sender from start() to end(); call sample() as often as the phase polls."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.cpu_at_start = {name: cpu_seconds(process) for name, process in processes.items()}
        self.peak_rss = {name: rss_mb(process) for name, process in processes.items()}
        self.started = time.monotonic()

    def sample(self) -> None:
        for name, process in self.processes.items():
            self.peak_rss[name] = max(self.peak_rss[name], rss_mb(process))

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(RSS_EVERY_S, left))
            self.sample()

    def end(self) -> dict[str, dict[str, float]]:
        self.sample()
        return {
            name: {"cpu_s": cpu_seconds(process) - self.cpu_at_start[name], "peak_rss_mb": self.peak_rss[name]}
            for name, process in self.processes.items()
        }


def queue_state(url: str) -> dict[str, float]:
    """What the sender's own /metrics says of its remote-write queues (all of them together)."""
    found = parse_metrics(http_get(url + "/metrics")[1])

    def total(name: str) -> float:
        return sum(value for _, value in found.get(name, []))

    sent = [value for _, value in found.get("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", [])]
    per_send = [value for _, value in found.get("prometheus_remote_storage_max_samples_per_send", [])]
    return {
        "highest_sent": min(sent) if sent else 0.0,
        "pending": total("prometheus_remote_storage_samples_pending"),
        "one_batch": sum(per_send) * max(1.0, total("prometheus_remote_storage_shards")),
        "appended": total("prometheus_tsdb_head_samples_appended_total"),
        "head_series": total("prometheus_tsdb_head_series"),
    }


def drained(state: dict[str, float], since: float) -> bool:
    return state["highest_sent"] >= math.floor(since) and state["pending"] <= state["one_batch"]


def wait_targets_up(sender: PrometheusProcess, jobs: set[str], timeout: float = 90.0) -> None:
    """Every job scraped, and up; else a one-line error naming the target and Prometheus' own reason."""
    deadline = time.monotonic() + timeout
    while True:
        targets = [target for target in sender.api.targets() if target["labels"]["job"] in jobs]
        down = [target for target in targets if target["health"] != "up"]
        if {target["labels"]["job"] for target in targets} == jobs and not down:
            return
        if time.monotonic() > deadline:
            named = "; ".join(f"{t['scrapeUrl']}: {t['lastError'] or t['health']}" for t in down) or "missing jobs"
            raise SystemExit(f"remote_write_catchup: {sender.name} cannot scrape every target: {named}")
        time.sleep(1.0)


def newest_taken_before(sender: PrometheusProcess, moment: float, window: int) -> float:
    stamps = [at for at, _ in raw_samples(sender.api, WATCHED, window) if at <= moment]
    if not stamps:
        raise SystemExit(f"remote_write_catchup: the sender took no {WATCHED} sample before the restart")
    return stamps[-1]


def one_round(
    receiver: PrometheusProcess,
    senders: dict[str, PrometheusProcess],
    processes: dict[str, psutil.Process],
    args: argparse.Namespace,
    remote_selector: str,
) -> dict:
    steady = Phase(processes)
    steady.wait(args.steady)
    steady_usage = steady.end()

    before = {name: queue_state(sender.url) for name, sender in senders.items()}
    receiver.stop()
    outage_start = time.time()
    outage = Phase(processes)
    outage.wait(args.outage)
    outage_usage = outage.end()
    after = {name: queue_state(sender.url) for name, sender in senders.items()}
    outage_end = time.time()
    window = int(outage_end - outage_start) + 60
    newest = newest_taken_before(senders["remote_write"], outage_end, window)

    receiver.start()
    catch_up = Phase(processes)
    received_at = drained_at = None
    deadline = time.monotonic() + args.catch_up_timeout
    while received_at is None or drained_at is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"remote_write_catchup: not caught up within {args.catch_up_timeout:g} s")
        states = {name: queue_state(sender.url) for name, sender in senders.items()}  # both polled alike
        elapsed = time.monotonic() - catch_up.started
        if drained_at is None and drained(states["remote_write"], outage_end):
            drained_at = elapsed
        if received_at is None:
            stamps = [at for at, _ in raw_samples(receiver.api, remote_selector, window + 60)]
            if any(abs(at - newest) < 0.0005 for at in stamps):
                received_at = elapsed
        catch_up.sample()
        time.sleep(POLL_S)
    catch_up_usage = catch_up.end()

    taken = {at for at, _ in raw_samples(senders["remote_write"].api, WATCHED, window + 60)}
    got = [at for at, _ in raw_samples(receiver.api, remote_selector, window + 60)]
    in_window = {at for at in taken if outage_start - 5 < at <= outage_end}
    missing = len(in_window - set(got))
    return {
        "catch_up_s": max(received_at, drained_at),
        "receiver_has_newest_s": received_at,
        "queue_drained_s": drained_at,
        "outage_samples": after["remote_write"]["appended"] - before["remote_write"]["appended"],
        "pending_at_restart": after["remote_write"]["pending"],
        "missing_samples": missing,
        "largest_gap_s": largest_gap(sorted(got), outage_start - 5, outage_end),
        "head_series": after["remote_write"]["head_series"],
        "steady": steady_usage,
        "outage": outage_usage,
        "catch_up": catch_up_usage,
    }


def compared(rounds: list[dict], phase: str) -> dict:
    """Each sender's CPU seconds and peak RSS in one phase, and the remote-write sender's against the baseline's."""
    result: dict = {}
    for measure in ("cpu_s", "peak_rss_mb"):
        values = {name: [one[phase][name][measure] for one in rounds] for name in SENDERS}
        pairs = list(zip(values["remote_write"], values["baseline"], strict=True))
        result[measure] = {
            **{name: summary(values[name]) for name in SENDERS},
            "extra": summary([with_it - without for with_it, without in pairs]),
            "ratio_vs_baseline": summary([with_it / without for with_it, without in pairs if without > 0]),
        }
    return result


def start_exporter(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)[0] == 200:
                return process
        except OSError:
            pass  # not listening yet
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("remote_write_catchup: the exporter did not start")
        time.sleep(0.2)


def launcher_targets(state_dir: Path) -> dict[str, list[str]]:
    """The vLLM and exporter targets a running launcher lists for its own Prometheus."""
    directory = state_dir / "generated" / "prometheus" / "targets"
    found: dict[str, list[str]] = {}
    for job in ("vllm", "exporter"):
        try:
            groups = json.loads((directory / f"{job}.json").read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(
                f"remote_write_catchup: --state-dir {state_dir}: cannot read its {job} targets: {error}"
            ) from None
        found[job] = [target for group in groups for target in group.get("targets", [])]
    return found


def keep_vllm_busy(base_url: str, every: float, stop: threading.Event, failed: list[int]) -> None:
    """One small completion every `every` seconds until `stop`, in a thread; failures counted in failed[0]."""
    with urllib.request.urlopen(base_url + "/v1/models", timeout=30) as response:
        model = json.loads(response.read())["data"][0]["id"]
    body = json.dumps({"model": model, "prompt": "x", "max_tokens": 4}).encode()

    def run() -> None:
        while not stop.wait(every):
            request = urllib.request.Request(
                base_url + "/v1/completions", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                urllib.request.urlopen(request, timeout=60).read()
            except OSError:
                failed[0] += 1

    threading.Thread(target=run, daemon=True).start()


def prometheus_version() -> str:
    result = subprocess.run([str(PROMETHEUS), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else "unknown"


def parse_options() -> argparse.Namespace:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down in each round")
    options.add_argument("--steady", type=float, default=30.0, help="seconds measured with the receiver up")
    options.add_argument("--scrape-interval", type=float, default=5.0, help="the senders' (the launcher's default)")
    options.add_argument("--catch-up-timeout", type=float, default=300.0)
    options.add_argument("--vllm-url", default=None, help="a running vLLM to scrape and keep busy")
    options.add_argument("--state-dir", type=Path, default=None, help="a running launcher's: its exporter and vLLM")
    options.add_argument("--request-every", type=float, default=2.0, help="seconds between completions to vLLM")
    args = options.parse_args()
    if args.rounds < 1 or min(args.outage, args.steady, args.scrape_interval, args.request_every) <= 0:
        options.error("--rounds must be >= 1 and --outage, --steady, --scrape-interval, --request-every > 0")
    if args.vllm_url is not None:
        parts = urllib.parse.urlsplit(args.vllm_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            options.error(f"--vllm-url {args.vllm_url}: expected http://HOST:PORT")
        args.vllm_url = args.vllm_url.rstrip("/")
    if args.state_dir is not None and not (args.state_dir / "generated" / "prometheus" / "targets").is_dir():
        options.error(f"--state-dir {args.state_dir}: no generated/prometheus/targets there (not a launcher's)")
    return args


def main() -> None:
    args = parse_options()
    directory = Path(tempfile.mkdtemp(prefix="swm-bench-remote-write-"))
    receiver = receiver_process(directory, free_port())
    started: list[subprocess.Popen] = []
    senders: dict[str, PrometheusProcess] = {}
    stop_requests = threading.Event()
    failed = [0]
    try:
        if args.state_dir is not None:
            targets = launcher_targets(args.state_dir)
        else:
            exporter_port = free_port()
            started.append(start_exporter(exporter_port))
            targets = {"exporter": [f"127.0.0.1:{exporter_port}"], "vllm": []}
        vllm_url = args.vllm_url or (f"http://{targets['vllm'][0]}" if targets["vllm"] else None)
        if args.vllm_url is not None:
            targets["vllm"] = [urllib.parse.urlsplit(args.vllm_url).netloc]
        # Each sender's own `prometheus` job is not waited for: it is always reachable, and scraped every 30 s.
        jobs = {"swm-exporter", *(["vllm"] if targets["vllm"] else [])}
        for name in SENDERS:
            port = free_port()
            url = f"{receiver.url}/api/v1/write" if name == "remote_write" else None
            own = {**targets, "prometheus": [f"127.0.0.1:{port}"]}
            config = sender_config(directory / f"{name}-state", port, args.scrape_interval, url, CLUSTER, own)
            senders[name] = PrometheusProcess(name, directory, port, config)
        receiver.start()
        for sender in senders.values():
            sender.start()
        for sender in senders.values():
            wait_targets_up(sender, jobs)
        if vllm_url is not None:
            keep_vllm_busy(vllm_url, args.request_every, stop_requests, failed)
        remote_selector = f'up{{job="swm-exporter", host="{default_hostname()}", cluster="{CLUSTER}"}}'
        receiver.api.wait_for(remote_selector, timeout=120)
        processes = {name: psutil.Process(sender.pid) for name, sender in senders.items()}
        rounds = []
        for round_index in range(args.rounds):
            one = one_round(receiver, senders, processes, args, remote_selector)
            rounds.append(one)
            log_round(
                round=round_index,
                **{key: value for key, value in one.items() if key not in ("steady", "outage", "catch_up")},
                catch_up_cpu_s={name: one["catch_up"][name]["cpu_s"] for name in SENDERS},
            )
    finally:
        stop_requests.set()
        for sender in senders.values():
            sender.stop()
        receiver.stop()
        for process in started:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
    print(
        json.dumps(
            {
                "machine": {**machine(), "prometheus": prometheus_version()},
                "vllm": vllm_url or "none",
                "targets": sorted({*jobs, "prometheus"}),
                "scrape_interval_s": args.scrape_interval,
                "outage_s": args.outage,
                "steady_s": args.steady,
                "rounds": args.rounds,
                "head_series": summary([one["head_series"] for one in rounds]),
                "outage_samples": summary([one["outage_samples"] for one in rounds]),
                "catch_up_s": summary([one["catch_up_s"] for one in rounds]),
                "receiver_has_newest_s": summary([one["receiver_has_newest_s"] for one in rounds]),
                "queue_drained_s": summary([one["queue_drained_s"] for one in rounds]),
                "missing_samples": [one["missing_samples"] for one in rounds],
                "largest_gap_s": summary([one["largest_gap_s"] for one in rounds]),
                "failed_requests": failed[0],
                "steady": compared(rounds, "steady"),
                "outage": compared(rounds, "outage"),
                "catch_up": compared(rounds, "catch_up"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

"""Exporter cost at 1, 8 and 64 simulated GPUs: CPU time per collection (and per hour at the default 5 s
interval), scrape latency with Prometheus' own Accept and Accept-Encoding headers while collections
run beside the scrapes, and RSS.

    .venv/bin/python -m bench.exporter_overhead [--scrapes 500] [--collections 50] [--gpus 1,8,64]

GPUs are simulated with the NVML HARDWARE STAND-IN, so collection CPU time measures our code, not the
driver: real NVML calls add their own cost (scripts/gpu-check reports real-GPU figures). Prints one
JSON document; docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from bench.stats import log_round, machine, percentile, summary
from observability.exporter.build import build_registry
from observability.exporter.exposition import choose_encoder
from tests.support.standins.standin_gpu_exporter import standin_with

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def collection_cpu_ms(gpu_count: int, collections: int) -> dict[str, float]:
    """CPU milliseconds for one round of every collector, rendering included, measured in this thread."""
    registry = build_registry("bench-host", 3600.0, None, None, nvml_library=standin_with(gpu_count).library())
    encoder, content_type = choose_encoder("application/openmetrics-text;version=1.0.0")
    registry.formats.want(content_type, encoder)  # as once Prometheus has scraped: rendering is part of the cost
    for collection in registry.collections:
        collection.collect_once()  # warm caches (identities, psutil priming)
    samples = []
    for _ in range(collections):
        started = time.thread_time()
        for collection in registry.collections:
            collection.collect_once()
        samples.append((time.thread_time() - started) * 1000)
    return summary(samples)


# What Prometheus 2.x sends (scrape/scrape.go): OpenMetrics first, and gzip.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
OVERLAP_INTERVAL_S = 0.5  # collections this often during the scrapes, so that they overlap


def scrape_latency_and_rss(gpu_count: int, scrapes: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.standins.standin_gpu_exporter",
            str(port),
            "--gpus",
            str(gpu_count),
            "--interval",
            str(OVERLAP_INTERVAL_S),
        ],
        cwd=REPO,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the exporter did not start") from None
                time.sleep(0.1)
        request = urllib.request.Request(url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        urllib.request.urlopen(request, timeout=5).read()  # the format is rendered from the next collection on
        time.sleep(OVERLAP_INTERVAL_S * 2)
        latencies, size = [], 0
        for _ in range(scrapes):
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                encoding = response.headers.get("Content-Encoding", "")
            latencies.append((time.perf_counter() - started) * 1000)
            size = len(body)
        plain = len(gzip.decompress(body)) if encoding == "gzip" else size
        rss_mb = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "scrape_ms_p50": percentile(latencies, 0.5),
        "scrape_ms_p99": percentile(latencies, 0.99),
        "payload_bytes_gzip": size,
        "payload_bytes": plain,
        "rss_mb": rss_mb,
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--scrapes", type=int, default=500)
    options.add_argument("--collections", type=int, default=50)
    options.add_argument("--gpus", default="1,8,64")
    args = options.parse_args()
    results = {"machine": machine(), "rows": []}
    for gpu_count in [int(value) for value in args.gpus.split(",")]:
        cpu = collection_cpu_ms(gpu_count, args.collections)
        row = {
            "gpus": gpu_count,
            **scrape_latency_and_rss(gpu_count, args.scrapes),
            "collection_cpu_ms": cpu,
            "cpu_seconds_per_hour_at_5s": cpu["median"] / 1000 * 3600 / 5,
        }
        results["rows"].append(row)
        log_round(**row)
    baseline = results["rows"][0]
    for row in results["rows"]:
        row["scrape_p99_ratio_vs_first"] = row["scrape_ms_p99"] / baseline["scrape_ms_p99"]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

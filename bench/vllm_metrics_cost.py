"""What Prometheus costs the server: payload bytes and latency of vLLM's own /metrics, idle and under load.

    python -m bench.vllm_metrics_cost [--scrapes 200] [--base-url URL --tokenizer DIR]

Without --base-url it starts a bare `vllm serve` of the tiny model. Latency is measured while
`vllm bench serve` loads the server, so it includes contention with the work Prometheus must not slow.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from pathlib import Path

from bench.load import vllm_bench
from bench.servers import complete_once, start_bare, tiny_model_dir
from bench.stats import machine, percentile, summary


def scrape(url: str, count: int, stop: threading.Event | None = None) -> tuple[list[float], list[int]]:
    latencies, sizes = [], []
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        sizes.append(len(body))
        time.sleep(0.05)
    return latencies, sizes


def describe(latencies: list[float], sizes: list[int]) -> dict:
    return {
        "scrapes": len(latencies),
        "latency_ms_p50": percentile(latencies, 0.5),
        "latency_ms_p99": percentile(latencies, 0.99),
        "payload_bytes": summary(sizes),
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--scrapes", type=int, default=200)
    options.add_argument("--num-prompts", type=int, default=400)
    options.add_argument("--base-url", default=None)
    options.add_argument("--tokenizer", type=Path, default=None)
    args = options.parse_args()
    model = args.tokenizer or tiny_model_dir()
    server = None
    base_url = args.base_url
    if base_url is None:
        server = start_bare(model)
        server.wait_healthy()
        base_url = server.base_url
    try:
        url = base_url + "/metrics"
        for _ in range(3):  # every histogram has samples before the idle scrape
            complete_once(base_url, max_tokens=8)
        idle = scrape(url, args.scrapes)
        done = threading.Event()
        loaded: tuple[list[float], list[int]] = ([], [])

        def scrape_during_load() -> None:
            nonlocal loaded
            loaded = scrape(url, args.scrapes * 10, stop=done)

        thread = threading.Thread(target=scrape_during_load)
        thread.start()
        vllm_bench(base_url, model, num_prompts=args.num_prompts)
        done.set()
        thread.join()
    finally:
        if server is not None:
            server.stop()
    report = {"machine": machine(), "idle": describe(*idle), "under_load": describe(*loaded)}
    report["p50_ratio_loaded_vs_idle"] = report["under_load"]["latency_ms_p50"] / report["idle"]["latency_ms_p50"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

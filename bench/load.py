"""Load for the benchmarks: vLLM's own `vllm bench serve`, with a fixed dataset and seed."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from bench.servers import QUIET_ENV, VLLM
from launcher.vllm_server.tiny_model import TINY_MODEL_NAME

METRICS = ("output_throughput", "request_throughput", "median_ttft_ms", "p99_ttft_ms", "median_itl_ms", "p99_itl_ms")


def vllm_bench(
    base_url: str,
    tokenizer: Path,
    num_prompts: int,
    max_concurrency: int = 32,
    input_len: int = 64,
    output_len: int = 32,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="swm-bench-result-") as directory:
        command = [
            str(VLLM),
            "bench",
            "serve",
            "--backend",
            "vllm",
            "--base-url",
            base_url,
            "--model",
            TINY_MODEL_NAME,
            "--tokenizer",
            str(tokenizer),
            "--dataset-name",
            "random",
            "--random-input-len",
            str(input_len),
            "--random-output-len",
            str(output_len),
            "--num-prompts",
            str(num_prompts),
            "--request-rate",
            "inf",
            "--max-concurrency",
            str(max_concurrency),
            "--ignore-eos",
            "--seed",
            "0",
            "--disable-tqdm",
            "--percentile-metrics",
            "ttft,itl",
            "--metric-percentiles",
            "50,99",
            "--save-result",
            "--result-dir",
            directory,
            "--result-filename",
            "result.json",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, **QUIET_ENV, "TMPDIR": directory}, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"vllm bench serve failed: {result.stderr[-2000:]}")
        document = json.loads((Path(directory) / "result.json").read_text())
    return {metric: float(document[metric]) for metric in METRICS if metric in document}


def stream_completion(port: int, started: threading.Event, failures: list[str] | None = None) -> None:
    """One long streaming completion; `started` is set at its first token. Why it failed, if it did, goes
    to `failures`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"model": TINY_MODEL_NAME, "prompt": "def", "max_tokens": 1900, "ignore_eos": True, "stream": True}
    try:
        connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:  # an error's body is no stream: `started` stays unset
            if failures is not None:
                failures.append(f"HTTP {response.status}: {response.read(300)!r}")
            return
        if response.readline().strip():
            started.set()
        while response.readline():
            pass
    except (OSError, http.client.HTTPException) as error:
        if failures is not None:
            failures.append(f"{type(error).__name__}: {error}")
    finally:
        connection.close()

"""A long streaming completion a test keeps open while it does something to the server (freezes its engine,
stops it), and the server's EngineCore."""

from __future__ import annotations

import http.client
import json
import threading

import psutil


def stream_completion(
    port: int, started: threading.Event, stop: threading.Event, headers: dict[str, str] | None = None
) -> None:
    """Reads a 1,900-token stream until it ends or `stop` is set; `started` once the first chunk came."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
    body = {"model": "tiny-llama", "prompt": "def", "max_tokens": 1900, "ignore_eos": True, "stream": True}
    try:
        connection.request(
            "POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        if response.status != 200:  # an error's body is no stream: `started` stays unset, and the test says so
            return
        if response.readline().strip():
            started.set()
        while not stop.is_set() and response.readline():
            pass
    except (OSError, http.client.HTTPException):
        pass
    finally:
        connection.close()


def engine_core(api_pid: int) -> psutil.Process:
    """vLLM names its engine process with setproctitle: VLLM::EngineCore."""
    return next(
        process
        for process in psutil.Process(api_pid).children(recursive=True)
        if " ".join(process.cmdline()).startswith("VLLM::EngineCore")
    )

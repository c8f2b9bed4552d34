"""The serving bench's verdict, from made-up rounds: the smoke test runs it without the A/A control, to
start two servers instead of three, so the band and within_noise are checked here."""

from bench.load import METRICS
from bench.serving_overhead import compare


def _round(throughput: float, ttft: float) -> dict[str, float]:
    values = dict.fromkeys(METRICS, 1.0)
    values.update(output_throughput=throughput, median_ttft_ms=ttft)
    return values


def test_a_condition_inside_the_control_band_is_within_noise_and_one_outside_is_not():
    runs = {
        "bare": [_round(100, 80), _round(100, 80), _round(100, 80)],
        "bare-again": [_round(90, 80), _round(110, 80), _round(100, 88)],  # strays 10 % at most
        "monitored-5s": [_round(95, 80), _round(97, 80), _round(105, 80)],
        "monitored-1s": [_round(70, 120), _round(75, 120), _round(80, 120)],
    }
    inside, outside = compare(runs, "monitored-5s"), compare(runs, "monitored-1s")
    low, high = inside["a_a_band"]["output_throughput"]
    assert round(low, 3) == round(1 / 1.1111, 3) and round(high, 3) == 1.111  # symmetric about 1
    assert inside["within_noise"]["output_throughput"] and inside["within_noise"]["median_ttft_ms"]
    assert not outside["within_noise"]["output_throughput"] and not outside["within_noise"]["median_ttft_ms"]
    assert outside["ratio_per_round"]["median_ttft_ms"]["median"] == 1.5


def test_without_the_control_there_is_no_band_and_a_zero_metric_has_no_ratio():
    runs = {"bare": [_round(100, 80)], "monitored-5s": [_round(50, 0)]}
    comparison = compare(runs, "monitored-5s")
    assert "within_noise" not in comparison
    assert comparison["ratio_vs_bare"]["output_throughput"] == 0.5
    assert comparison["ratio_per_round"]["median_ttft_ms"]["n"] == 0

"""Service-level objectives turned into Prometheus rules: error ratios over the Google SRE Workbook's windows,
28-day compliance, and multi-window, multi-burn-rate alerts (as Sloth and Pyrra generate them).

Three SLIs, all from vLLM's own metrics:
- ttft: the fraction of requests whose first token took longer than the threshold;
- itl: the fraction of generated tokens that came later than the threshold after the previous one;
- availability: the fraction of finished requests that ended in error or abort.
Latency SLIs read a histogram bucket, so a threshold must be one of vLLM's bucket bounds.

    python -m observability.slo_rules          # writes observability/prometheus/rules/slo.yml (the defaults)
    python -m observability.slo_rules --check  # exit 1 when that file is out of date
"""

from __future__ import annotations

import argparse
import bisect
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from observability.files import SLO_RULES
from observability.generated_files import write_or_check
from observability.runbooks import RUNBOOK_BASE_URL, runbook_url
from observability.slo_objectives import COMPLIANCE_WINDOW, DEFAULT_OBJECTIVES, Objective, Objectives

# Every minute, the first rules record each SLI's 5-minute rates of bad events and of all events. The 30m and
# 1h windows are read from vLLM's counters: exact for the fast pages, and cheap. Longer windows and the 28-day
# compliance add up the recorded rates. At a 5 s scrape, 3 days of raw samples are 51,840 points per counter,
# read every minute, and 28 days 483,840: Prometheus' cost would grow with its data for four weeks (bench/
# slo_rule_cost.py). Summed, they are 4,320 and 40,320 points.
RAW_WINDOWS = ("30m", "1h")
SUMMED_WINDOWS = ("2h", "6h", "1d", "3d")
BAD_EVENTS_5M = "swm:slo_bad_events:rate5m"
TOTAL_EVENTS_5M = "swm:slo_total_events:rate5m"


@dataclass(frozen=True)
class BurnAlert:
    long_window: str
    short_window: str
    burn_rate: float
    severity: str  # critical pages a person, warning opens a ticket
    for_: str


# The workbook's table: a burn of 14.4x spends 2 % of a 30-day budget in an hour.
BURN_ALERTS = (
    BurnAlert("1h", "5m", 14.4, "critical", "2m"),
    BurnAlert("6h", "30m", 6, "critical", "15m"),
    BurnAlert("1d", "2h", 3, "warning", "1h"),
    BurnAlert("3d", "6h", 1, "warning", "3h"),
)

# vLLM's bucket bounds (vllm/v1/metrics/loggers.py, unchanged from 0.10 to 0.32; a test checks them
# against a live /metrics page).
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
    80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip


@dataclass(frozen=True)
class LatencySli:
    metric: str  # the histogram, without _bucket
    buckets: tuple[float, ...]
    option: str  # the launcher option that sets its threshold


LATENCY_SLIS = {
    "ttft": LatencySli("vllm:time_to_first_token_seconds", TTFT_BUCKETS, "--slo-ttft-threshold"),
    "itl": LatencySli("vllm:inter_token_latency_seconds", ITL_BUCKETS, "--slo-itl-threshold"),
}


def bucket_problem(objective: Objective) -> str | None:
    """Why the objective's threshold cannot be used for its latency SLI, naming the nearest bounds; None when
    it can (or the SLI has no threshold)."""
    if objective.sli not in LATENCY_SLIS or objective.threshold_s is None:
        return None
    spec, threshold = LATENCY_SLIS[objective.sli], objective.threshold_s
    if any(abs(bound - threshold) < 1e-9 for bound in spec.buckets):
        return None
    index = bisect.bisect_left(spec.buckets, threshold)
    nearest = [f"{spec.buckets[i]:g}" for i in (index - 1, index) if 0 <= i < len(spec.buckets)]
    return (
        f"{spec.option} {threshold:g}: not a bucket bound of {spec.metric}, so no SLI can be computed for it;"
        f" the nearest are {' and '.join(nearest)}"
    )


def _le(threshold: float) -> str:
    """The `le` label as prometheus_client writes it: 2.5 -> "2.5", 1 -> "1.0"."""
    return repr(float(threshold))


def _total_events(sli: str, window: str) -> str:
    if sli == "availability":
        return f"sum by (model_name) (rate(vllm:request_success_total[{window}]))"
    return f"sum by (model_name) (rate({LATENCY_SLIS[sli].metric}_count[{window}]))"


def _bad_events(sli: str, objectives: Objectives, window: str) -> str:
    if sli == "availability":
        return f'sum by (model_name) (rate(vllm:request_success_total{{finished_reason=~"error|abort"}}[{window}]))'
    spec = LATENCY_SLIS[sli]
    threshold = objectives.of(sli).threshold_s
    assert threshold is not None
    good = f'sum by (model_name) (rate({spec.metric}_bucket{{le="{_le(threshold)}"}}[{window}]))'
    return f"({_total_events(sli, window)} - {good})"


def _error_ratio(sli: str, objectives: Objectives, window: str) -> str:
    """From vLLM's counters: exact, and cheap over short windows."""
    return f"{_bad_events(sli, objectives, window)}\n  /\n{_total_events(sli, window)}"


def _summed_error_ratio(sli: str, window: str) -> str:
    """From the 5-minute rates recorded every minute: the same ratio of sums over a long window (each minute
    weighs in by its traffic), reading one point a minute instead of every raw sample of every counter."""
    selector = f'{{slo="{sli}"}}[{window}]'
    return f"sum_over_time({BAD_EVENTS_5M}{selector})\n  /\nsum_over_time({TOTAL_EVENTS_5M}{selector})"


ALERT_NAMES = {
    "ttft": "VllmSloTtftBudgetBurn",
    "itl": "VllmSloItlBudgetBurn",
    "availability": "VllmSloAvailabilityBudgetBurn",
}
_WHAT = {
    "ttft": "time to first token",
    "itl": "inter-token latency",
    "availability": "availability (requests without error or abort)",
}


def _alert(sli: str, objectives: Objectives, burn: BurnAlert, runbook_base: str) -> dict[str, Any]:
    budget = 1 - objectives.of(sli).target
    limit = f"{burn.burn_rate:g} * {budget:.6g}"
    long_rule = f'swm:slo_error_ratio:rate{burn.long_window}{{slo="{sli}"}}'
    short_rule = f'swm:slo_error_ratio:rate{burn.short_window}{{slo="{sli}"}}'
    name = ALERT_NAMES[sli]
    return {
        "alert": name,
        "expr": f"{long_rule} > ({limit})\nand on(slo, model_name)\n{short_rule} > ({limit})",
        "for": burn.for_,
        "labels": {
            "severity": burn.severity,
            "slo": sli,
            "window": f"{burn.long_window}/{burn.short_window}",
        },
        "annotations": {
            "summary": (
                f"{{{{ $labels.model_name }}}} burns its {_WHAT[sli]} error budget at over {burn.burn_rate:g}x"
                f" ({burn.long_window} and {burn.short_window})"
            ),
            "description": (
                f"Over the last {burn.long_window} and {burn.short_window}, "
                f"{{{{ $value | humanizePercentage }}}} of {'tokens' if sli == 'itl' else 'requests'} missed the "
                f"{sli} objective ({objectives.of(sli).target:g} over {COMPLIANCE_WINDOW}): at this rate the "
                f"{COMPLIANCE_WINDOW} budget lasts {28 / burn.burn_rate:.3g} days."
            ),
            "runbook_url": runbook_url(runbook_base, name),
        },
    }


LATENCY_ALERTS = {"ttft": "VllmTimeToFirstTokenHigh", "itl": "VllmInterTokenLatencyHigh"}


def _latency_alerts(objectives: Objectives, runbook_base: str) -> list[dict[str, Any]]:
    """The latency objective missed right now, for 10 minutes: more of the last 5 minutes' events over the
    threshold than the target allows (for a 0.99 target, the p99 is over the threshold). A ticket, not a page:
    the burn-rate alerts say when the 28-day budget is in danger."""
    alerts = []
    for sli, name in LATENCY_ALERTS.items():
        objective = objectives.of(sli)
        missed = {
            "ttft": "requests waited longer than {} s for their first token",
            "itl": "tokens came later than {} s after the one before",
        }[sli].format(f"{objective.threshold_s:g}")
        alerts.append(
            {
                "alert": name,
                "expr": f'swm:slo_error_ratio:rate5m{{slo="{sli}"}} > {objective.error_budget:.6g}',
                "for": "10m",
                "labels": {"severity": "warning", "slo": sli},
                "annotations": {
                    "summary": (
                        f"{_WHAT[sli].capitalize()} {objective.quantile_name} is over {objective.threshold_s:g} s"
                        " for {{ $labels.model_name }}"
                    ),
                    "description": (
                        f"For 10 minutes, {{{{ $value | humanizePercentage }}}} of {missed} over 5 minutes;"
                        f" the objective allows {objective.error_budget:.3g}."
                    ),
                    "runbook_url": runbook_url(runbook_base, name),
                },
            }
        )
    return alerts


def slo_rule_groups(objectives: Objectives, runbook_base: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
    ratios: list[dict[str, Any]] = []
    compliance: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for sli in ("ttft", "itl", "availability"):
        labels = {"slo": sli}
        target = objectives.of(sli).target
        # In a group, rules run in order: the sums below read this evaluation's 5-minute rates.
        ratios += [
            {"record": BAD_EVENTS_5M, "expr": _bad_events(sli, objectives, "5m"), "labels": labels},
            {"record": TOTAL_EVENTS_5M, "expr": _total_events(sli, "5m"), "labels": labels},
        ]
        ratios.append(
            {
                "record": "swm:slo_error_ratio:rate5m",
                "expr": f'{BAD_EVENTS_5M}{{slo="{sli}"}}\n  /\n{TOTAL_EVENTS_5M}{{slo="{sli}"}}',
                "labels": labels,
            }
        )
        ratios += [
            {
                "record": f"swm:slo_error_ratio:rate{window}",
                "expr": _error_ratio(sli, objectives, window),
                "labels": labels,
            }
            for window in RAW_WINDOWS
        ]
        ratios += [
            {
                "record": f"swm:slo_error_ratio:rate{window}",
                "expr": _summed_error_ratio(sli, window),
                "labels": labels,
            }
            for window in SUMMED_WINDOWS
        ]
        compliance += [
            {"record": "swm:slo_objective:ratio", "expr": f"vector({target:g})", "labels": labels},
            {
                "record": f"swm:slo_error_ratio:rate{COMPLIANCE_WINDOW}",
                "expr": _summed_error_ratio(sli, COMPLIANCE_WINDOW),
                "labels": labels,
            },
            {
                "record": f"swm:slo_attainment:ratio{COMPLIANCE_WINDOW}",
                "expr": f'1 - swm:slo_error_ratio:rate{COMPLIANCE_WINDOW}{{slo="{sli}"}}',
                "labels": labels,
            },
            {
                "record": f"swm:slo_error_budget_remaining:ratio{COMPLIANCE_WINDOW}",
                "expr": f'1 - swm:slo_error_ratio:rate{COMPLIANCE_WINDOW}{{slo="{sli}"}} / {1 - target:.6g}',
                "labels": labels,
            },
        ]
        if sli in LATENCY_SLIS:
            compliance.append(
                {
                    "record": "swm:slo_threshold_seconds",
                    "expr": f"vector({objectives.of(sli).threshold_s:g})",
                    "labels": labels,
                }
            )
        alerts += [_alert(sli, objectives, burn, runbook_base) for burn in BURN_ALERTS]
    return {
        "groups": [
            {"name": "swm-slo-error-ratios", "interval": "1m", "rules": ratios},
            # A 28-day budget moves slowly: every 5 minutes is enough.
            {"name": "swm-slo-compliance", "interval": "5m", "rules": compliance},
            {"name": "swm-slo-burn-rate-alerts", "interval": "1m", "rules": alerts},
            # As the other alert groups (alerts.yml): each waits a `for:` of minutes.
            {"name": "swm-slo-latency-alerts", "interval": "30s", "rules": _latency_alerts(objectives, runbook_base)},
        ]
    }


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, text: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")


def _with_literals(node: Any, ending: str) -> Any:
    """Multi-line PromQL as block literals, for a reader. Expressions only: every other string (an annotation
    holding a user's value) keeps its exact value, quoted as the dumper sees fit."""
    if isinstance(node, dict):
        return {
            key: _Literal(value + ending)
            if key == "expr" and isinstance(value, str) and "\n" in value.rstrip("\n")
            else _with_literals(value, ending)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_with_literals(value, ending) for value in node]
    return node


def dump_rules(document: dict[str, Any], expr_ending: str = "") -> str:
    """A rule file's text from its data: the one way rules reach a file (values are never pasted into text).
    `expr_ending` is added to each multi-line expression (PromQL ignores it)."""
    dumper = type("RulesDumper", (yaml.SafeDumper,), {})
    dumper.add_representer(_Literal, _literal)
    body = _with_literals(document, expr_ending)
    return yaml.dump(body, Dumper=dumper, sort_keys=False, width=120, allow_unicode=True)


def render(objectives: Objectives, runbook_base: str = RUNBOOK_BASE_URL) -> str:
    body = dump_rules(slo_rule_groups(objectives, runbook_base), expr_ending="\n")  # `|`, not `|-`: as ever
    return (
        "# Generated by `python -m observability.slo_rules` from the SLO defaults in observability/slo_objectives.py;\n"
        "# the launcher renders its own copy from --slo-* options. Edit observability/slo_rules.py, not this.\n" + body
    )


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--check", action="store_true", help="exit 1 when slo.yml differs from what the code makes")
    args = options.parse_args()
    return write_or_check(SLO_RULES, render(DEFAULT_OBJECTIVES), "observability.slo_rules", args.check)


if __name__ == "__main__":
    sys.exit(main())

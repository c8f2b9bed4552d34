"""Reads vLLM's own /metrics: the few series that show whether each engine moves, and the names on the page.

The launcher reads this page for as long as it runs, so it reads it the cheap way: one regular expression
picks out the few series it needs (vLLM's page is about 54 KB and 600 lines, most of them histogram
buckets), rather than a parse of every line in Python. The names on the page, wanted once per run, are
another expression over the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Counters that move with every engine step that does work (iteration_tokens_total is observed per step,
# so a long chunked prefill moves it before any token is generated).
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROGRESS_COUNTERS = (
    GENERATION_TOKENS,
    "vllm:prompt_tokens_total",
    "vllm:request_success_total",
    "vllm:iteration_tokens_total_count",
    "vllm:num_preemptions_total",
)
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
# Scheduler gauges: they change while a step runs even when no counter has moved yet.
SCHEDULER_GAUGES = ("vllm:kv_cache_usage_perc", RUNNING, WAITING)
SLEEP_STATE = "vllm:engine_sleep_state"
REQUESTS_FINISHED = "vllm:request_success_total"

_READ = (*PROGRESS_COUNTERS, *SCHEDULER_GAUGES, SLEEP_STATE)
# A sample line of one of the series read: name, optional {labels}, value (prometheus_client writes no
# timestamps). Longer names first, so that a name that prefixes another cannot cut it short. Anchored on
# "\n" rather than "^": a pattern that starts with a literal is searched for at C speed, one that starts
# with ^ is tried at every character. The text is searched with a "\n" in front for the first line.
_READ_SAMPLE = re.compile(
    r"\n(" + "|".join(re.escape(name) for name in sorted(_READ, key=len, reverse=True)) + r")"
    r"(?:\{([^}\n]*)\})?[ \t]+(\S+)"
)
# Every sample name (a line that is not a comment), and every family name from a # TYPE line.
_SAMPLE_NAME = re.compile(r"\n([^#\s{]+)")
_FAMILY_NAME = re.compile(r"\n# TYPE (\S+)")
_ENGINE = re.compile(r'(?:^|,)engine="([^"]*)"')
_AWAKE = re.compile(r'(?:^|,)sleep_state="awake"')


@dataclass
class EngineReading:
    """One engine's series, each summed over its other labels (finished_reason, pid ...)."""

    engine: str
    values: dict[str, float] = field(default_factory=dict)
    asleep: bool = False

    def value(self, name: str) -> float:
        return self.values.get(name, 0.0)

    @property
    def running(self) -> float:
        return self.value(RUNNING)

    @property
    def waiting(self) -> float:
        return self.value(WAITING)

    @property
    def pending(self) -> bool:
        return self.running + self.waiting > 0

    def signature(self) -> tuple[float | None, ...]:
        """Equal for two readings exactly when nothing the engine reports has moved in between."""
        return tuple(self.values.get(name) for name in (*PROGRESS_COUNTERS, *SCHEDULER_GAUGES))


@dataclass(frozen=True)
class MetricsPage:
    engines: dict[str, EngineReading]
    names: frozenset[str]  # sample and family names on the page; empty unless asked for

    @property
    def requests_finished(self) -> float:
        return sum(engine.value(REQUESTS_FINISHED) for engine in self.engines.values())


def page_names(text: str) -> frozenset[str]:
    """Sample and family names on the page."""
    lines = "\n" + text
    return frozenset(_SAMPLE_NAME.findall(lines)) | frozenset(_FAMILY_NAME.findall(lines))


def parse_metrics_page(text: str, with_names: bool = False) -> MetricsPage:
    engines: dict[str, EngineReading] = {}
    for name, labels, value_text in _READ_SAMPLE.findall("\n" + text):
        try:
            value = float(value_text)
        except ValueError:
            continue
        match = _ENGINE.search(labels)
        engine_id = match.group(1) if match else ""
        engine = engines.setdefault(engine_id, EngineReading(engine_id))
        if name == SLEEP_STATE:
            if _AWAKE.search(labels) and value == 0:
                engine.asleep = True
            continue
        engine.values[name] = engine.values.get(name, 0.0) + value
    return MetricsPage(engines, page_names(text) if with_names else frozenset())

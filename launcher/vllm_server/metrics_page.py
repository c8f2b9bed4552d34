"""Reads vLLM's own /metrics: the few series that show whether each engine moves, and the names on the page.

The launcher reads this page every health interval, so it reads it the cheap way: a scan of lines by
prefix rather than a full parse (vLLM's page is about 54 KB and 700 lines; the scan takes well under a
millisecond).
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

_READ = frozenset((*PROGRESS_COUNTERS, *SCHEDULER_GAUGES, SLEEP_STATE))
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


def _split_sample(line: str) -> tuple[str, str, str]:
    """name, label text, value text of one exposition line (no timestamp: prometheus_client writes none)."""
    brace = line.find("{")
    if brace == -1:
        name, _, rest = line.partition(" ")
        return name, "", rest.strip()
    close = line.rfind("}")
    return line[:brace], line[brace + 1 : close], line[close + 1 :].strip()


def parse_metrics_page(text: str, with_names: bool = False) -> MetricsPage:
    engines: dict[str, EngineReading] = {}
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            if with_names and line.startswith("# TYPE "):
                names.add(line.split(" ", 3)[2])
            elif with_names and line and not line.startswith("#"):
                names.add(_split_sample(line)[0])
            continue
        name, labels, value_text = _split_sample(line)
        if with_names:
            names.add(name)
        if name not in _READ:
            continue
        try:
            value = float(value_text.split(" ", 1)[0])
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
    return MetricsPage(engines, frozenset(names))

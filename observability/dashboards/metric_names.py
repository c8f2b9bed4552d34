"""Which metric names exist, so a dashboard can never query one nobody exports.

vLLM's names are read from the installed vLLM's source (as vLLM's own dashboard generator does), ours
from the exporter's source, recording rules from the shipped rules file.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from observability.efficiency_rules import efficiency_rule_groups
from observability.files import OBSERVABILITY, PROMETHEUS_RULES

METRIC_TOKEN = re.compile(
    r"\b(vllm:[a-z0-9_]+|swm:[a-z0-9_:]+|swm_[a-z0-9_]+|DCGM_FI_[A-Z0-9_]+|alertmanager_[a-z0-9_]+)\b"
)
PROMETHEUS_BUILTINS = {"up", "ALERTS", "scrape_duration_seconds"}
ALERTMANAGER_METRICS = {"alertmanager_notifications_total", "alertmanager_notifications_failed_total"}
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def names_in(text: str) -> set[str]:
    return set(METRIC_TOKEN.findall(text))


def _scan(files: Iterable[Path], pattern: re.Pattern[str]) -> set[str]:
    found: set[str] = set()
    for path in files:
        try:
            found |= set(pattern.findall(path.read_text(encoding="utf-8", errors="ignore")))
        except OSError:
            continue
    return found


def vllm_metric_names() -> set[str] | None:
    """Names the installed vLLM defines, or None when vLLM is not installed here."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return _scan(root.rglob("*.py"), re.compile(r"[\"'](vllm:[a-z0-9_]+)[\"']"))


def exporter_metric_names() -> set[str]:
    return _scan(
        (OBSERVABILITY / "exporter").glob("*.py"), re.compile(r"[\"'](swm_[a-z0-9_]+|DCGM_FI_[A-Z0-9_]+)[\"']")
    )


def recording_rule_names() -> set[str]:
    """The shipped records, and the cost records the launcher adds with --gpu-hourly-cost (the price is
    irrelevant here: any valid one gives the names)."""
    groups = list(efficiency_rule_groups(gpu_hourly_cost=1.0)["groups"])
    for path in PROMETHEUS_RULES.glob("*.yml"):
        groups += yaml.safe_load(path.read_text()).get("groups", [])
    return {rule["record"] for group in groups for rule in group.get("rules", []) if "record" in rule}


def is_known(name: str, known: set[str]) -> bool:
    if name in known:
        return True
    return any(name.endswith(suffix) and name[: -len(suffix)] in known for suffix in _SUFFIXES)

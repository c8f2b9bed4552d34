"""The service-level objectives, defined once, as data. One objective per SLI:

- ttft: a request is good when its first token comes within `threshold_s`;
- itl: a generated token is good when it comes within `threshold_s` of the one before;
- availability: a request is good when it finishes without error or abort.

`target` is the fraction of good events required over the compliance window. Everything that speaks of an
SLO reads it from here: the burn-rate rules and latency alerts (slo_rules.py), the dashboards' thresholds,
the launcher's --slo-* options and their defaults, and, through the launcher's status file, `top`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

COMPLIANCE_WINDOW = "28d"
SLIS = ("ttft", "itl", "availability")


@dataclass(frozen=True)
class Objective:
    sli: str
    target: float  # the fraction of good events over COMPLIANCE_WINDOW, such as 0.99
    threshold_s: float | None = None  # latency SLIs only: good when within this many seconds

    @property
    def error_budget(self) -> float:
        return 1 - self.target

    @property
    def quantile_name(self) -> str:
        """The quantile the objective bounds, as people say it: a 0.99 target bounds the p99."""
        return f"p{self.target * 100:g}"


@dataclass(frozen=True)
class Objectives:
    # Thresholds must be bucket bounds of vLLM's histograms (slo_rules.py): 0.25 s is none for inter-token
    # latency, 0.3 s is.
    ttft: Objective = Objective("ttft", 0.99, 2.5)
    itl: Objective = Objective("itl", 0.99, 0.3)
    availability: Objective = Objective("availability", 0.999)

    def all(self) -> tuple[Objective, ...]:
        return tuple(getattr(self, sli) for sli in SLIS)

    def of(self, sli: str) -> Objective:
        return getattr(self, sli)

    def changed(self, sli: str, **values: float) -> Objectives:
        return replace(self, **{sli: replace(self.of(sli), **values)})

    def as_info(self) -> dict[str, str]:
        """Flat string keys, for the launcher's status file (its `info`), which `top` reads back."""
        info = {}
        for objective in self.all():
            for field in fields(objective):
                value = getattr(objective, field.name)
                if field.name != "sli" and value is not None:
                    info[f"slo_{objective.sli}_{field.name}"] = f"{value:g}"
        return info

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Objectives | None:
        """What as_info() wrote; None when the info holds no (or unreadable) objectives."""
        objectives = cls()
        try:
            for objective in objectives.all():
                for name in ("target", "threshold_s"):
                    key = f"slo_{objective.sli}_{name}"
                    if key in info:
                        objectives = objectives.changed(objective.sli, **{name: float(info[key])})
                    elif name == "target":
                        return None
        except (TypeError, ValueError):
            return None
        return objectives


DEFAULT_OBJECTIVES = Objectives()

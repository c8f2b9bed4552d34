"""A latency SLI reads one histogram bucket by its `le` label, which must be spelt as vLLM's page spells it
("1.0", not "1"): a label that matches no series gives an SLI with no data, and no alert ever fires. Every
bucket bound, as a threshold, against vLLM 0.32's own /metrics page."""

import re
from pathlib import Path

import pytest

from observability.slo_objectives import DEFAULT_OBJECTIVES
from observability.slo_rules import LATENCY_SLIS, slo_rule_groups

PAGE = (Path(__file__).resolve().parents[1] / "fixtures" / "vllm_metrics_0.32.txt").read_text()


@pytest.mark.parametrize("sli", sorted(LATENCY_SLIS))
def test_every_threshold_reads_a_bucket_vllm_exports(sli):
    spec = LATENCY_SLIS[sli]
    exported = set(re.findall(rf'^{re.escape(spec.metric)}_bucket{{[^}}]*le="([^"]+)"', PAGE, re.M))
    for bound in spec.buckets:
        rules = slo_rule_groups(DEFAULT_OBJECTIVES.changed(sli, threshold_s=bound))
        expressions = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
        read = set(re.findall(rf'{re.escape(spec.metric)}_bucket{{le="([^"]+)"}}', expressions))
        assert read and read <= exported, (bound, read)

"""Reads Prometheus text exposition into {name: [(labels, value)]} for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def one(found: dict, name: str, **labels: str) -> float:
    matches = [
        value
        for found_labels, value in found.get(name, [])
        if all(found_labels.get(key) == wanted for key, wanted in labels.items())
    ]
    assert len(matches) == 1, f"{name} {labels}: {matches}"
    return matches[0]

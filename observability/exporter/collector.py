"""The one interface every collector implements, and a helper to build metric families from rows.

As in node_exporter, each collector lives in its own module and knows one source. Unlike a
prometheus_client custom collector, ours run on a background thread (see collection.py): collect()
may block on a driver call, and a scrape only ever reads the last snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class Collector(Protocol):
    """Collectors that also listen for events (XID) add start() and stop(); the registry calls them."""

    name: str

    def collect(self) -> list[Metric]:
        """Reads its source and returns complete metric families. Raising marks this collection failed."""


def gauge(name: str, documentation: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def counter(
    name: str, documentation: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]
) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family

"""The exporter's encoder choice writes what prometheus_client's own would, byte for byte, for every
Accept header a scraper sends; only its cost differs (observability/exporter/exposition.py)."""

import re
import tempfile
from pathlib import Path

import pytest
from prometheus_client import exposition as text_format
from prometheus_client.core import Metric

from observability.exporter.build import build_registry
from observability.exporter.exposition import choose_encoder
from observability.exporter.rendering import FamilyTexts, render
from tests.support.exporter_golden import _status
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus

ACCEPT_HEADERS = (
    # Prometheus 2.x and 3.x
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=underscores,text/plain;version=0.0.4;q=0.5",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=underscores",
    "text/plain;version=0.0.4",
    "",
)


@pytest.fixture(scope="module")
def families():
    """Every family of the NVML HARDWARE STAND-IN's two-GPU host with a supervised vLLM."""
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.gpus[0].processes = [(424242, 60 * 2**30)]
    with tempfile.TemporaryDirectory() as directory:
        state_file = Path(directory) / "supervisor.json"
        _status(state_file)
        registry = build_registry("host", 3600.0, state_file, Path(directory), nvml_library=standin.library())
        try:
            collected = [family for c in registry.collections for family in c.collector.collect()]
        finally:
            registry.stop()
            standin.uninstall()
    return collected


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_the_same_bytes_and_content_type_as_prometheus_client_writes(families, accept):
    ours, our_type = choose_encoder(accept)
    theirs, their_type = text_format.choose_encoder(accept)
    assert our_type == their_type
    assert render(families, ours) == render(families, theirs)


def test_no_name_the_exporter_writes_needs_escaping(families):
    names = {family.name for family in families} | {s.name for f in families for s in f.samples}
    labels = {label for f in families for s in f.samples for label in s.labels}
    legacy = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    assert [name for name in sorted(names | labels) if not legacy.match(name)] == []


def test_families_kept_from_the_last_collection_render_as_the_whole_would(families):
    encoder, _ = choose_encoder(ACCEPT_HEADERS[0])
    texts = FamilyTexts(encoder)
    assert texts.render(families) == render(families, encoder)
    first = families[0]
    moved = [Metric(first.name, first.documentation, first.type, first.unit), *families[1:]]
    for sample in first.samples:
        moved[0].add_sample(sample.name, sample.labels, sample.value + 1, sample.timestamp)
    assert texts.render(moved) == render(moved, encoder)  # the moved family rendered anew, the rest kept
    assert texts.render(families) == render(families, encoder)

"""The whole /metrics of two fixed hosts against its fixture (tests/fixtures/exporter-*.txt), as
node_exporter's e2e-output.txt: a renamed metric, a changed label or type, a new family shows up in
review as a diff of the fixture. The GPU host is the NVML HARDWARE STAND-IN's. Regenerate with
`.venv/bin/python -m tests.support.exporter_golden --update`."""

import difflib

import pytest

from tests.support.exporter_golden import FIXTURES, HOSTS, exposition, masked


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_the_whole_exposition_matches_its_fixture(host):
    expected = (FIXTURES / HOSTS[host]).read_text()
    actual = masked(exposition(host))
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "fixture", "now"))
    update = ".venv/bin/python -m tests.support.exporter_golden --update"
    assert actual == expected, f"{diff}\nIf this change is meant: {update}"

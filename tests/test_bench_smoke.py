"""Benchmarks are not tests: this only checks each bench script completes on a tiny budget."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_exporter_overhead_bench_completes():
    result = subprocess.run(
        [sys.executable, "-m", "bench.exporter_overhead", "--scrapes", "5", "--collections", "2", "--gpus", "1,2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["gpus"] for row in report["rows"]] == [1, 2]

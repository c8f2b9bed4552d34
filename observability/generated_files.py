"""Files generated from the code in observability/ and committed: written, or with --check compared, by one
rule, so that the tests catch a generator changed without its output."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(path: Path, text: str, module: str, check: bool) -> int:
    """Writes `text` to `path`; with `check`, exit status 1 (and one line) when the file differs instead."""
    if not check:
        path.write_text(text)
        return 0
    if path.exists() and path.read_text() == text:
        return 0
    print(f"{path} is out of date: run python -m {module}", file=sys.stderr)
    return 1

"""Finding the programs the launcher runs beside vLLM (prometheus, amtool, py-spy ...): beside this Python
first, where pip and scripts/setup.sh put them, then on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_tool(*names: str) -> Path | None:
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return beside
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None

"""Finds the vllm executable and the Python interpreter behind it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from launcher.errors import PreflightError

INSTALL_HINT = (
    "install one: pip install 'serve-with-monitoring[gpu]' on a CUDA host, or 'serve-with-monitoring[cpu]'"
    " (vLLM's CPU build) elsewhere; or pass --vllm-bin PATH"
)


def find_vllm(requested: str | None) -> Path:
    if requested:
        candidate = Path(requested).expanduser()
        if os.sep not in requested:
            found = shutil.which(requested)
            candidate = Path(found) if found else candidate
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
        raise PreflightError(f"--vllm-bin {requested}: no such executable; {INSTALL_HINT}")
    # The venv this launcher runs from comes first: it need not be activated.
    beside_python = Path(sys.executable).parent / "vllm"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("vllm")
    if on_path:
        return Path(on_path)
    raise PreflightError(f"no vllm executable found beside {sys.executable} or on PATH; {INSTALL_HINT}")


def interpreter_of(executable: Path) -> str | None:
    """The Python named in a console script's shebang, if it is one."""
    try:
        with executable.open("rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    command = first[2:].decode(errors="ignore").strip().split()
    if not command:
        return None
    interpreter = command[-1] if command[0].endswith("/env") else command[0]
    return interpreter if "python" in Path(interpreter).name else None

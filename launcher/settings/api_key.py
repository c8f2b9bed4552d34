"""vLLM's API key as the launcher takes it: from --api-key on a command line, or from --api-key-file.
It reaches vLLM only as VLLM_API_KEY, never in an argv (see commands/main.py and vllm_server/command.py)."""

from __future__ import annotations

from pathlib import Path

from launcher.errors import UsageError

API_KEY_FLAG = "--api-key"
API_KEY_VARIABLE = "VLLM_API_KEY"


def split_api_key(argv: list[str]) -> tuple[list[str], list[str]]:
    """argv without --api-key, and the keys it carried. Like vLLM's own option, it takes every value that
    follows it up to the next option."""
    kept: list[str] = []
    keys: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if token.startswith(API_KEY_FLAG + "="):
            keys.append(token.split("=", 1)[1])
        elif token == API_KEY_FLAG:
            while index < len(argv) and not argv[index].startswith("-"):
                keys.append(argv[index])
                index += 1
        else:
            kept.append(token)
    return kept, keys


def read_api_key_file(path: Path) -> str:
    try:
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"--api-key-file {path}: cannot read it ({getattr(error, 'strerror', None) or error})"
        ) from None
    if not key or "\n" in key:
        raise UsageError(f"--api-key-file {path}: expected one API key on one line")
    return key

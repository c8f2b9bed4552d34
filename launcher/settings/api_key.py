"""vLLM's API key as the launcher takes it: from --api-key on a command line, or from --api-key-file.
It reaches vLLM only as VLLM_API_KEY, never in an argv (see commands/main.py and vllm_server/command.py).
The general rule, for every secret option, is secret_options.py; these are its API-key names."""

from __future__ import annotations

from pathlib import Path

from launcher.settings.secret_options import API_KEY, read_secret_file, split_secrets

API_KEY_FLAG = API_KEY.flag
API_KEY_VARIABLE = API_KEY.variable


def split_api_key(argv: list[str]) -> tuple[list[str], list[str]]:
    """argv without --api-key, and the keys it carried. Like vLLM's own option, it takes every value that
    follows it up to the next option."""
    kept, found = split_secrets(argv, (API_KEY,))
    return kept, found.get(API_KEY, [])


def read_api_key_file(path: Path) -> str:
    return read_secret_file(path, API_KEY)

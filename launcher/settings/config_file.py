"""Reads --config: one YAML mapping holding launcher settings, vLLM settings, or both.

vLLM has its own `--config` with the same shape (option names as keys). Ours takes the launcher's
keys and hands every other key to vLLM, so an existing vLLM config file works unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import UsageError
from launcher.settings.options import BY_CONFIG_KEY, BY_FLAG, REMOVED, removed_option_message


@dataclass(frozen=True)
class ConfigFile:
    path: Path | None = None
    launcher: dict[str, Any] = field(default_factory=dict)  # option dest -> parsed value
    vllm: dict[str, Any] = field(default_factory=dict)  # key -> value, exactly as written


def _canonical_key(key: str) -> str:
    return key.replace("_", "-")


def _parse_launcher_value(path: Path, key: str, raw: Any) -> Any:
    option = BY_CONFIG_KEY[key]
    if option.repeatable:
        items = raw if isinstance(raw, list) else [raw]
        return tuple(_parse_one(path, key, option.parse, item) for item in items)
    if option.parse is None:
        if not isinstance(raw, bool):
            raise UsageError(f"config file {path}: key '{key}': expected true or false, got {raw!r}")
        return raw
    return _parse_one(path, key, option.parse, raw)


def _parse_one(path: Path, key: str, parse: Callable[[str], Any], raw: Any) -> Any:
    if isinstance(raw, (dict, list, bool)) or raw is None:
        raise UsageError(f"config file {path}: key '{key}': expected a single value, got {raw!r}")
    try:
        return parse(str(raw))
    except ValueError as error:
        raise UsageError(f"config file {path}: key '{key}': {error}") from None


def load_config_file(path: Path) -> ConfigFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read config file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise UsageError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if document is None:
        return ConfigFile(path=path)
    if not isinstance(document, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings, not a {type(document).__name__}")

    launcher: dict[str, Any] = {}
    vllm: dict[str, Any] = {}
    for raw_key, value in document.items():
        if not isinstance(raw_key, str) or not raw_key.strip():
            raise UsageError(f"config file {path}: key {raw_key!r} is not an option name")
        key = _canonical_key(raw_key.strip())
        if key == "config":
            raise UsageError(f"config file {path}: key 'config': a config file cannot name another one")
        if f"--{key}" in REMOVED:
            raise UsageError(f"config file {path}: key '{key}': {removed_option_message('--' + key)}")
        if key in BY_CONFIG_KEY:
            launcher[BY_CONFIG_KEY[key].dest] = _parse_launcher_value(path, key, value)
        elif f"--{key}" in BY_FLAG:
            raise UsageError(f"config file {path}: key '{key}' is only accepted on the command line")
        else:
            vllm[raw_key] = value
    return ConfigFile(path=path, launcher=launcher, vllm=vllm)

"""Reads --config: one YAML mapping holding launcher settings, vLLM settings, or both.

vLLM has its own `--config` with the same shape (option names as keys). Ours takes the launcher's
keys and hands every other key to vLLM, so an existing vLLM config file works unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import UsageError
from launcher.settings.options import BY_CONFIG_KEY, BY_FLAG, REMOVED, removed_option_message
from launcher.settings.plain_yaml import PlainYamlError, load_plain_yaml, read_bounded
from launcher.settings.shown_values import shown


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
            raise UsageError(f"config file {path}: key '{key}': expected true or false, got {shown(raw)}")
        return raw
    return _parse_one(path, key, option.parse, raw)


def _parse_one(path: Path, key: str, parse: Callable[[str], Any], raw: Any) -> Any:
    if isinstance(raw, (dict, list, bool)) or raw is None:
        raise UsageError(f"config file {path}: key '{key}': expected a single value, got {shown(raw)}")
    try:
        return parse(str(raw))
    except ValueError as error:
        raise UsageError(f"config file {path}: key '{key}': {error}") from None


def load_config_file(path: Path) -> ConfigFile:
    try:
        text = read_bounded(path)
    except OSError as error:
        raise UsageError(f"cannot read config file {path}: {error.strerror or error}") from None
    except PlainYamlError as error:
        raise UsageError(f"config file {path}: {error}") from None
    try:
        document = load_plain_yaml(text)
    except PlainYamlError as error:
        where = f" at {error.where}" if error.where else ""
        raise UsageError(
            f"config file {path}{' is not valid YAML' if error.invalid else ''}{where}: {error.problem}"
        ) from None
    if document is None:
        return ConfigFile(path=path)
    if not isinstance(document, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings, not a {type(document).__name__}")

    launcher: dict[str, Any] = {}
    vllm: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # canonical key -> as written
    for raw_key, value in document.items():
        if not isinstance(raw_key, str) or not raw_key.strip():
            raise UsageError(f"config file {path}: key {shown(raw_key)} is not an option name")
        key = _canonical_key(raw_key.strip())
        if key in spelled:
            raise UsageError(
                f"config file {path}: keys {shown(spelled[key])} and {shown(raw_key)} name the same setting; keep one"
            )
        spelled[key] = raw_key
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

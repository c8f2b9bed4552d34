"""Flags whose meaning changed across vLLM releases, translated for the installed vLLM.

A rule either rewrites a flag into what this vLLM understands or refuses it with a reason.
Rules apply to the command line and to the vLLM keys of --config alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from launcher.errors import UsageError
from launcher.vllm_server.capabilities import VllmCapabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Translate:
    """A switch replaced by the first equivalent this vLLM accepts, or dropped when it is the default."""

    flag: str
    equivalents: tuple[str, ...]
    dropped_because: str


@dataclass(frozen=True)
class Refuse:
    flag: str
    reason: str


RULES: dict[str, Translate | Refuse] = {
    "--disable-log-requests": Translate(
        "--disable-log-requests",
        ("--disable-log-requests", "--no-enable-log-requests"),
        "request logging is already off by default in this vLLM",
    ),
    "--disable-log-stats": Refuse(
        "--disable-log-stats",
        "it removes every vllm: metric from /metrics, so a monitored server cannot use it",
    ),
}


def _translated(rule: Translate, capabilities: VllmCapabilities) -> str | None:
    for equivalent in rule.equivalents:
        if capabilities.accepts(equivalent):
            if equivalent != rule.flag:
                log.info("translating %s to %s for vLLM %s", rule.flag, equivalent, capabilities.version)
            return equivalent
    log.info("dropping %s: %s (vLLM %s)", rule.flag, rule.dropped_because, capabilities.version)
    return None


def translate_args(args: tuple[str, ...], capabilities: VllmCapabilities) -> tuple[str, ...]:
    result: list[str] = []
    for token in args:
        flag, has_value, value = token.partition("=")
        rule = RULES.get(flag)
        if isinstance(rule, Refuse):
            raise UsageError(f"refusing {rule.flag}: {rule.reason}")
        if isinstance(rule, Translate):
            if has_value and value.lower() in ("false", "0", "no"):
                continue
            replacement = _translated(rule, capabilities)
            if replacement:
                result.append(replacement)
            continue
        result.append(token)
    return tuple(result)


def translate_config(config: dict[str, Any], capabilities: VllmCapabilities) -> dict[str, Any]:
    """The same rules for config keys: `disable-log-requests: true` becomes `enable-log-requests: false`."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        rule = RULES.get("--" + key.replace("_", "-"))
        if isinstance(rule, Refuse):
            if value:
                raise UsageError(f"refusing config key '{key}': {rule.reason}")
            continue
        if isinstance(rule, Translate):
            replacement = _translated(rule, capabilities) if value else None
            if replacement and replacement.startswith("--no-"):
                result[replacement.removeprefix("--no-")] = False
            elif replacement:
                result[replacement.removeprefix("--")] = True
            continue
        result[key] = value
    return result

"""Flags whose meaning changed across vLLM releases, translated for the installed vLLM.

A rule either rewrites a flag into what this vLLM understands or refuses it with a reason.
Rules apply to the command line and to the vLLM keys of --config alike.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any

from launcher.errors import UsageError
from launcher.settings.shown_values import shortened, shown
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


def _unknown(flag: str, capabilities: VllmCapabilities) -> bool:
    """Whether vLLM's own parser would refuse this option, by what `vllm serve --help=all` listed."""
    if capabilities.accepts(flag):
        return False
    if flag.startswith("--") and capabilities.accepts(flag.replace("_", "-")):
        return False  # vLLM's parser reads --max_model_len as --max-model-len
    if "." in flag and capabilities.accepts(flag.split(".", 1)[0]):
        return False  # --compilation-config.mode 3: a key inside a JSON option
    if not flag.startswith("--") and any(flag.startswith(short) for short in capabilities.arity if len(short) == 2):
        return False  # -q4: a short option with its value attached
    if flag.startswith("-O") and not flag.startswith("--"):
        return False  # -O3: vLLM's parser rewrites it before argparse sees it, so help does not list it
    return True


def _suggestion(flag: str, capabilities: VllmCapabilities, ours: tuple[str, ...]) -> str:
    if len(flag) > 100:
        return ""  # no option is that long; and difflib's work grows with it
    known = [option for option in capabilities.arity if option.startswith("--")] + list(ours)
    close = difflib.get_close_matches(flag.replace("_", "-"), known, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def check_known_flags(
    args: tuple[str, ...], config: dict[str, Any], capabilities: VllmCapabilities, ours: tuple[str, ...] = ()
) -> None:
    """Refuses, before anything starts, an option the installed vLLM would refuse seconds later; the
    closest of vLLM's options and of the launcher's own (`ours`) are suggested, as argparse does. A vLLM
    whose options could not be learned is left to judge for itself."""
    if not capabilities.arity:
        return
    for token in args:
        if token == "--":
            break
        flag = token.split("=", 1)[0]
        if not flag.startswith("-") or flag == "-" or flag[1:2].isdigit():
            continue  # a positional, or a value such as -1
        if _unknown(flag, capabilities):
            raise UsageError(
                f"vllm serve {capabilities.version} has no option {shortened(flag)}"
                f"{_suggestion(flag, capabilities, ours)};"
                " see `vllm serve --help=all`"
            )
    for key in config:
        flag = "--" + str(key).replace("_", "-")
        if _unknown(flag, capabilities):
            raise UsageError(
                f"config file: key {shown(key)} is not an option of vllm serve {capabilities.version}"
                f"{_suggestion(flag, capabilities, ours)}"
            )

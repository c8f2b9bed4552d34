"""Splits the command line into the launcher's options and everything that goes to `vllm serve`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from launcher import __version__
from launcher.errors import UsageError
from launcher.settings.argument_parsing import OneLineErrorParser, typed
from launcher.settings.options import BY_FLAG, OPTIONS, REMOVED, removed_option_message

PROG = "serve-with-monitoring"


@dataclass(frozen=True)
class CommandLine:
    launcher: dict[str, Any]  # option dest -> parsed value, only for options actually given
    vllm_args: tuple[str, ...]
    wants_help: bool = False
    wants_version: bool = False


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, add_help=False, allow_abbrev=False)
    for option in OPTIONS:
        if option.repeatable:
            parser.add_argument(
                option.flag, dest=option.dest, type=typed(option.parse), action="append", default=argparse.SUPPRESS
            )
        elif option.takes_value:
            parser.add_argument(option.flag, dest=option.dest, type=typed(option.parse), default=argparse.SUPPRESS)
        else:
            parser.add_argument(option.flag, dest=option.dest, action="store_true", default=argparse.SUPPRESS)
    return parser


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Our tokens and vLLM's, each in their original order. After `--`, everything is vLLM's."""
    ours: list[str] = []
    theirs: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            theirs.extend(argv[index + 1 :])
            break
        flag = token.split("=", 1)[0]
        if flag in REMOVED:
            raise UsageError(removed_option_message(flag))
        option = BY_FLAG.get(flag)
        if option is None:
            theirs.append(token)
        elif option.takes_value and "=" not in token:
            if index + 1 >= len(argv):
                raise UsageError(f"{flag} needs a value ({option.metavar})")
            ours.extend((token, argv[index + 1]))
            index += 1
        else:
            ours.append(token)
        index += 1
    return ours, theirs


def parse_command_line(argv: list[str]) -> CommandLine:
    if "-h" in argv or "--help" in argv or argv == ["help"]:
        return CommandLine(launcher={}, vllm_args=(), wants_help=True)
    if argv[:1] == ["--version"]:
        return CommandLine(launcher={}, vllm_args=(), wants_version=True)
    ours, theirs = split_argv(argv)
    namespace = _parser().parse_args(ours)
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in vars(namespace).items()}
    return CommandLine(launcher=values, vllm_args=tuple(theirs))


def help_text() -> str:
    lines = [
        f"usage: {PROG} [MODEL] [launcher options] [vllm serve options]",
        f"       {PROG} exporter [options]     run only the GPU/host exporter",
        f"       {PROG} bench [options]        load the running server with `vllm bench serve`",
        f"       {PROG} health [--state-dir]   exit 0 when the supervised vLLM answers /health",
        f"       {PROG} top [--state-dir] [--once [--json]]   a live view of the server, its GPUs, alerts",
        f"       {PROG} systemd-unit [MODEL] [options]   print a systemd unit for this command line",
        f"       {PROG} incidents [show ID | capture] [--state-dir] [--json]   the incident bundles",
        "",
        "Runs `vllm serve MODEL ...` under supervision, with its monitoring beside it.",
        "Without MODEL it builds and serves a tiny local model (a demo that needs no GPU and no hub).",
        "Every option below is the launcher's; all others pass to `vllm serve` unchanged",
        "(see `vllm serve --help=all`). vLLM binds 127.0.0.1 unless you pass --host.",
        "",
        "launcher options:",
    ]
    for option in OPTIONS:
        head = f"  {option.flag}" + (f" {option.metavar}" if option.metavar else "")
        notes = [f"default: {option.default}"] if option.default not in (None, False, ()) else []
        span = getattr(option.parse, "span", None)
        notes += [f"range: {span()}"] if span else []
        lines.append(f"{head:<28} {option.help}" + (f" ({'; '.join(notes)})" if notes else ""))
    lines += ["  -h, --help                 show this help", "  --version                  show the version"]
    return "\n".join(lines)


def version_text() -> str:
    return f"{PROG} {__version__}"

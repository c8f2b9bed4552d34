"""argparse, made to fail the way the launcher fails: one line, no usage dump, exit code 2."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from launcher.errors import UsageError


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse `type=` from one of launcher/settings/value_parsers.py, keeping its message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    convert.parse = parse  # type: ignore[attr-defined]  # for the test that holds every number to its bounds
    return convert

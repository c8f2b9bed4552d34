"""How an error message shows the value it refuses: quoted, and cut to what one line of a terminal holds, so
that a 300 MB value read from a file never becomes a 300 MB error line."""

from __future__ import annotations

import reprlib

MAX_SHOWN_CHARS = 200

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = MAX_SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def shown(value: object) -> str:
    """repr() of the value, with only the start and the end of a long one: bounded work for any value."""
    text = _REPR.repr(value)[: MAX_SHOWN_CHARS + 20]
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        text += f" ({len(value)} characters)"
    return text


def shortened(text: str) -> str:
    """The text as it is (an option name), only its start when it is longer than MAX_SHOWN_CHARS."""
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} characters)"

"""The one way a value becomes text in a generated systemd unit (systemd.syntax(7), systemd.service(5),
systemd.exec(5)). A unit is line-based: a newline in a value would start a line of its own (`User=root`),
so values holding control characters are refused, never escaped. What remains is quoted so that systemd
reads back exactly the value given: `%` doubled (specifiers), `$` doubled in ExecStart= (variables),
double quotes with backslash escapes around anything but plain characters.

Text the renderer writes on purpose in systemd's own syntax (`$SWM_ARGS`, `%d/...`) is a SystemdText:
it passes unchanged, and only code builds one, never a user's value.
"""

from __future__ import annotations

import math
import re

from launcher.errors import UsageError

# \x00-\x1f and \x7f: a line feed or carriage return ends the line; the others have no place in a unit.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters an ExecStart= word may hold without quotes: none of them is whitespace, a quote, a backslash or
# a lone `;` (the command separator), so the word reads back as written.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")
# systemd.exec's User=: a strictly valid user name (at most 31 characters), or a numeric UID.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}|[0-9]{1,10}")
# systemd.exec's LoadCredential= ID: a valid file name.
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Far beyond any real timeout, far below what systemd's 64-bit microseconds can hold.
_MAX_SECONDS = 10 * 365 * 24 * 3600


class SystemdText(str):
    """Text already in systemd's syntax, written by this code on purpose (a variable or a specifier)."""


def printable(value: str) -> bool:
    """Whether a unit line could carry the value: no control character, valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not _CONTROL.search(value)


def checked(what: str, value: str) -> str:
    """The value itself, or a one-line refusal when a unit line could not carry it."""
    match = _CONTROL.search(value)
    if match:
        raise UsageError(
            f"systemd-unit: {what} holds a control character ({match.group()!r}); a unit is one setting per line,"
            " so it cannot be written there"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"systemd-unit: {what} is not valid UTF-8; systemd reads units as UTF-8") from None
    return value


def exec_word(value: str) -> str:
    """One ExecStart= argument: systemd hands the program exactly `value`, as one argument."""
    if isinstance(value, SystemdText):
        return str(value)
    escaped = checked("an argument of ExecStart=", value).replace("%", "%%").replace("$", "$$")
    if _PLAIN_WORD.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(executable: str, arguments: list[str]) -> str:
    """ExecStart='s value. The executable must be an absolute path: a leading `-`, `@`, `+`, `!` or `:`
    would be read as one of systemd's prefixes, which change how the command runs."""
    if not isinstance(executable, SystemdText) and not executable.startswith("/"):
        raise UsageError(f"systemd-unit: the launcher's path {executable!r} is not absolute")
    return " ".join(exec_word(word) for word in (executable, *arguments))


def user_name(value: str) -> str:
    """User= and Group=: a user name as systemd accepts it, or a refusal."""
    checked("--unit-user", value)
    if not _USER_NAME.fullmatch(value):
        raise UsageError(
            f"systemd-unit: --unit-user {value!r} is not a user name systemd accepts"
            " (a letter or _, then letters, digits, _ or -, at most 31 characters; or a numeric UID)"
        )
    return value


def absolute_path(what: str, value: str) -> str:
    """A path written as the rest of a line (LoadCredential=): absolute, `%` doubled. A backslash at the end
    would join the next line to it and trailing blanks are stripped, so neither is accepted."""
    checked(what, value)
    if not value.startswith("/"):
        raise UsageError(f"systemd-unit: {what} {value!r} is not an absolute path")
    if "\\" in value or value != value.rstrip():
        raise UsageError(f"systemd-unit: {what} {value!r} holds a backslash or ends in a blank; rename it")
    return value.replace("%", "%%")


def credential(identifier: str, path: str) -> str:
    """LoadCredential='s value: ID:PATH."""
    if not _CREDENTIAL_ID.fullmatch(identifier):
        raise UsageError(f"systemd-unit: {identifier!r} is not a credential name")
    return f"{identifier}:{absolute_path('the credential file', path)}"


def environment(name: str, value: str) -> str:
    """Environment='s value: one NAME=VALUE assignment, quoted. `%` is doubled unless the value is a
    SystemdText (a specifier meant for systemd); `$` is not expanded in Environment=."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"systemd-unit: {name!r} is not an environment variable name")
    text = str(value) if isinstance(value, SystemdText) else checked(name, value).replace("%", "%%")
    return '"' + f"{name}={text}".replace("\\", "\\\\").replace('"', '\\"') + '"'


def seconds(value: float) -> str:
    """A time setting in whole seconds, rounded up: a timeout is never shortened."""
    if not math.isfinite(value) or not 0 <= value <= _MAX_SECONDS:
        raise UsageError(f"systemd-unit: {value} s is not a time systemd can take")
    return str(math.ceil(value))

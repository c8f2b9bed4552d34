"""The options of `vllm serve` whose value is a secret, and where each secret goes instead of an argv.

/proc/PID/cmdline, `ps`, a unit's ExecStart= and the launcher's own log line for vLLM's command are readable
by others. So a secret reaches vLLM only through the environment variable vLLM reads it from, and the
launcher takes it from a file (FILE_OPTION) rather than from its own command line. Whatever builds a
command line for someone else to run (the systemd unit) asks this module which options to keep out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from launcher.errors import UsageError

# A key or a token is some hundred bytes; a file far larger is not one (/dev/zero, a log named by mistake).
MAX_SECRET_FILE_BYTES = 64 * 1024
# The launcher runs itself again with the secrets of its argv moved into its environment (commands/main.py);
# this variable names those variables, so that pre-flight knows they came from the command line.
MOVED_FROM_ARGV = "SWM_SECRETS_FROM_ARGV"


@dataclass(frozen=True)
class SecretOption:
    flag: str  # vLLM's option: --api-key
    variable: str  # the environment variable vLLM reads it from instead: VLLM_API_KEY
    file_option: str  # the launcher's option naming a file that holds it: --api-key-file
    what: str  # for messages: "API key"
    # `--hf-token` alone means "the token `hf auth login` stored": nothing secret on the command line, so it
    # stays there. `--api-key` takes one or more values, like vLLM's own.
    bare_allowed: bool = False
    several: bool = False

    @property
    def config_keys(self) -> tuple[str, str]:
        name = self.flag.removeprefix("--")
        return name, name.replace("-", "_")

    @property
    def settings_field(self) -> str:
        """The Settings field of its file option: api_key_file."""
        return self.file_option.removeprefix("--").replace("-", "_")


API_KEY = SecretOption("--api-key", "VLLM_API_KEY", "--api-key-file", "API key", several=True)
HF_TOKEN = SecretOption("--hf-token", "HF_TOKEN", "--hf-token-file", "Hugging Face token", bare_allowed=True)
SECRET_OPTIONS: tuple[SecretOption, ...] = (API_KEY, HF_TOKEN)
BY_FLAG: dict[str, SecretOption] = {option.flag: option for option in SECRET_OPTIONS}


def split_secrets(
    argv: list[str], options: tuple[SecretOption, ...] = SECRET_OPTIONS
) -> tuple[list[str], dict[SecretOption, list[str]]]:
    """argv without the secret options' values, and the values each carried, in order.

    A value is the token after the flag (for --api-key, every token up to the next option, as vLLM reads
    it) or what follows `=`. A token that begins with '-' is never taken as a value, and never named in an
    error: `--api-key -sk-...` is refused without echoing the key. A bare --hf-token stays in argv.
    """
    kept: list[str] = []
    found: dict[SecretOption, list[str]] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        flag, has_value, value = token.partition("=")
        option = BY_FLAG.get(flag.replace("_", "-") if flag.startswith("--") else flag)  # vLLM reads --hf_token too
        if option is None or option not in options:
            kept.append(token)
            continue
        values = found.setdefault(option, [])
        if has_value:
            if not value:
                raise UsageError(f"{flag}= needs a value; better, give {option.file_option} FILE")
            values.append(value)
            continue
        start = index
        while index < len(argv) and not argv[index].startswith("-") and (option.several or index == start):
            values.append(argv[index])
            index += 1
        if index > start:
            continue
        if option.bare_allowed:
            kept.append(token)
        elif index < len(argv) and not argv[index].startswith("--"):
            raise UsageError(
                f"{flag} is followed by something that begins with '-': a value that does is written "
                f"{flag}=VALUE (better, give {option.file_option} FILE)"
            )
        else:
            raise UsageError(f"{flag} needs a value; better, give {option.file_option} FILE")
    return kept, {option: values for option, values in found.items() if values}


def check_secret(value: str, option: SecretOption, where: str) -> str:
    """A secret fit for an environment variable: one line, no control characters. Never echoed."""
    if not value or any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise UsageError(f"{where}: expected one {option.what} on one line, without control characters")
    return value


def read_secret_file(path: Path, option: SecretOption) -> str:
    """The secret in the file named by option.file_option, read with a bound."""
    where = f"{option.file_option} {path}"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"{where}: cannot read it ({error.strerror or error})") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise UsageError(f"{where}: larger than {MAX_SECRET_FILE_BYTES // 1024} KiB, so not one {option.what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    return check_secret(text.strip(), option, where)

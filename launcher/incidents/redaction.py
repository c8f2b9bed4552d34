"""No secret in any file of a bundle: the values the launcher knows to be secret, the value after any option
whose name holds key, token, secret or password, and credentials in URLs are replaced before anything is
written."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
_SECRET_WORDS = r"key|apikey|token|secret|password|passwd"
# A name that holds one of the words as a whole part (api-key, hf_token, HF_TOKEN, client.secret), not inside
# a longer word (max_tokens, tokenizer, prompt_tokens_total, keys).
_SECRET_NAME = rf"(?:--?)?(?:[\w]+[-_.])*(?:{_SECRET_WORDS})(?:[-_.][\w]+)*"
# --api-key X, --hf-token=X, api_key: X, "password": "X", HF_TOKEN=X: the value after such a name on one line.
_NAMED_VALUE = re.compile(
    rf"""(?ix)
    (?<![\w.-])(?P<name>{_SECRET_NAME})(?![\w])
    (?P<sep>["']?[ \t]*[=:][ \t]*["']?|(?<=\w)[ \t]+(?=[^-\s]))   # = or :, or a space after an option
    (?P<value>[^\s"',;}}\]]+)
    """
)
_OPTION_NAME = re.compile(rf"(?i)^--?(?:[\w]+[-_.])*(?:{_SECRET_WORDS})(?:[-_.][\w]+)*$")
# scheme://user:password@host: the password goes, the user stays (it helps to know who).
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):([^/\s@]+)@")
# Bearer and Basic credentials in a header or a log line.
_AUTHORIZATION = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_SHORTEST_SECRET = 4  # shorter "secrets" would redact ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        known = {secret.strip() for secret in secrets if secret and len(secret.strip()) >= _SHORTEST_SECRET}
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _URL_CREDENTIALS.sub(rf"\1:{REDACTED}@", text)
        text = _AUTHORIZATION.sub(rf"\1 {REDACTED}", text)
        return _NAMED_VALUE.sub(_keep_name, text)

    def redact_argv(self, argv: Iterable[str]) -> list[str]:
        """An argv token by token: the value after `--api-key` is its own token."""
        result: list[str] = []
        hide_next = False
        for token in argv:
            if hide_next:
                result.append(REDACTED)
                hide_next = False
                continue
            name, has_value, _ = token.partition("=")
            if _OPTION_NAME.match(name):
                if has_value:
                    result.append(f"{name}={REDACTED}")
                else:
                    result.append(token)
                    hide_next = True
                continue
            result.append(self.redact(token))
        return result


def _keep_name(match: re.Match[str]) -> str:
    value = match.group("value")
    if not match.group("sep").strip(" \t\"'") and not match.group("name").startswith("-"):
        return match.group(0)  # a bare word followed by a space is prose, not a setting
    if value == REDACTED or value.startswith("<redacted"):
        return match.group(0)
    return f"{match.group('name')}{match.group('sep')}{REDACTED}"

"""Basic auth for the exporter's /metrics and /sd, checked against bcrypt hashes as exporter-toolkit does.

bcrypt is slow on purpose (tens of milliseconds per check), and Prometheus sends the same credentials on
every scrape, so a successful check is remembered, keyed by a keyed hash of the credentials rather
than the password itself. /healthz and / stay open: they tell nothing, and the launcher probes /healthz.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

PROTECTED_PATHS = ("/metrics", "/sd")
_CACHE_SIZE = 64


class BasicAuth:
    def __init__(self, users: dict[str, bytes]) -> None:
        import bcrypt  # here, not at the top: an exporter without basic auth needs no bcrypt installed

        self._bcrypt = bcrypt
        # A valid hash to check unknown users against: an unknown name costs as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._accepted: dict[bytes, None] = {}  # insertion-ordered: the oldest entry goes first
        self._lock = threading.Lock()

    def _fingerprint(self, header: str) -> bytes:
        return hmac.new(self._key, header.encode("latin-1"), hashlib.sha256).digest()

    def allows(self, authorization: str) -> bool:
        """True for an Authorization header that names a user with the right password."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        fingerprint = self._fingerprint(authorization)
        with self._lock:
            if any(hmac.compare_digest(fingerprint, known) for known in self._accepted):
                return True
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = next(
            (value for name, value in self._users.items() if hmac.compare_digest(name.encode(), user.encode())), None
        )
        valid = self._bcrypt.checkpw(password.encode(), hashed if hashed is not None else self._dummy_hash)
        if valid and hashed is not None:
            with self._lock:
                self._accepted[fingerprint] = None
                while len(self._accepted) > _CACHE_SIZE:
                    self._accepted.pop(next(iter(self._accepted)))
            return True
        return False

"""Basic auth for the exporter's /metrics and /sd, checked against bcrypt hashes as exporter-toolkit does.

bcrypt is slow on purpose (about 250 ms at cost 12), so it is kept where it can slow nothing else:
- A check runs on a small pool of threads (bcrypt releases the GIL), never on the event loop: /healthz and
  scrapes with remembered credentials are answered while strangers' passwords are being checked.
- At most CHECKERS checks run and WAITING more wait; any request beyond that is answered at once (429), so
  a flood of wrong passwords holds neither a queue nor a connection for long.
- Prometheus sends the same credentials on every scrape, so a successful check is remembered, keyed by a
  keyed hash of the header rather than the password itself: a scrape does not pay for bcrypt again.
- An unknown name is checked against a dummy hash of the highest cost among the users, so that it takes as
  long to refuse as a known name with a wrong password.
/healthz and / stay open: they tell nothing, and the launcher probes /healthz.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from observability.exporter.web_config import bcrypt_cost

PROTECTED_PATHS = ("/metrics", "/sd")
CHECKERS = 2
WAITING = 2
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further, and bcrypt 5 raises rather than truncate
_CACHE_SIZE = 64


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    BUSY = "busy"  # too many checks under way: try again shortly


def credentials(authorization: bytes) -> tuple[bytes, bytes] | None:
    """(user, password) from a Basic Authorization header; None for anything a password check cannot use."""
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:  # not base64, or bytes outside ASCII
        return None
    user, colon, password = decoded.partition(b":")
    if not colon or len(password) > MAX_PASSWORD_BYTES:
        return None
    return user, password


class BasicAuth:
    def __init__(self, users: dict[str, bytes], checkers: int = CHECKERS, waiting: int = WAITING) -> None:
        import bcrypt  # here, not at the top: an exporter without basic auth needs no bcrypt installed

        self._bcrypt = bcrypt
        self._users = [(name.encode(), hashed) for name, hashed in users.items()]
        self.dummy_cost = max(bcrypt_cost(hashed) for hashed in users.values())
        # A real hash made cheaply, then relabelled with the users' cost: checking against it costs as much as
        # checking a real user's, and no password matches it.
        cheap = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=4))
        self._dummy_hash = cheap[:4] + b"%02d" % self.dummy_cost + cheap[6:]
        self._key = secrets.token_bytes(32)
        self._accepted: dict[bytes, None] = {}  # insertion-ordered: the oldest entry goes first
        self._lock = threading.Lock()
        self._checkers = ThreadPoolExecutor(max_workers=checkers, thread_name_prefix="bcrypt")
        self._most_admitted = checkers + waiting
        self._admitted = 0  # changed on the event loop only

    def _fingerprint(self, authorization: bytes) -> bytes:
        return hmac.new(self._key, authorization, hashlib.sha256).digest()

    def _remembered(self, fingerprint: bytes) -> bool:
        # A dict lookup is not constant time, but its key is an HMAC under a secret key: timing tells nothing.
        with self._lock:
            return fingerprint in self._accepted

    def _remember(self, fingerprint: bytes) -> None:
        with self._lock:
            self._accepted[fingerprint] = None
            while len(self._accepted) > _CACHE_SIZE:
                self._accepted.pop(next(iter(self._accepted)))

    def _check(self, user: bytes, password: bytes) -> bool:
        """The slow part: one bcrypt check, whether or not the user exists."""
        hashed = None
        for name, value in self._users:  # every name compared: as long for the first user as for the last
            if hmac.compare_digest(name, user):
                hashed = value
        try:
            valid = self._bcrypt.checkpw(password, hashed if hashed is not None else self._dummy_hash)
        except ValueError:  # a password bcrypt will not take: refused like a wrong one
            valid = False
        return valid and hashed is not None

    def allows(self, authorization: str | bytes) -> bool:
        """True for an Authorization header that names a user with the right password (blocking)."""
        if isinstance(authorization, str):
            try:
                authorization = authorization.encode("latin-1")
            except UnicodeEncodeError:
                return False
        fingerprint = self._fingerprint(authorization)
        if self._remembered(fingerprint):
            return True
        given = credentials(authorization)
        if given is None or not self._check(*given):
            return False
        self._remember(fingerprint)
        return True

    async def verdict(self, authorization: bytes) -> Verdict:
        """allows(), for the event loop: the bcrypt check runs on a checker thread, and when too many are under
        way the answer is BUSY at once."""
        fingerprint = self._fingerprint(authorization)
        if self._remembered(fingerprint):
            return Verdict.ALLOWED
        given = credentials(authorization)
        if given is None:
            return Verdict.DENIED
        if self._admitted >= self._most_admitted:
            return Verdict.BUSY
        self._admitted += 1
        try:
            valid = await asyncio.get_running_loop().run_in_executor(self._checkers, self._check, *given)
        finally:
            self._admitted -= 1
        if not valid:
            return Verdict.DENIED
        self._remember(fingerprint)
        return Verdict.ALLOWED

    def close(self) -> None:
        self._checkers.shutdown(wait=False, cancel_futures=True)

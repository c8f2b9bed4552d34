"""The exporter's password checks (observability/exporter/access.py) in one process: bad input is refused, not
raised; an unknown name costs what a known one does; bcrypt runs beside the event loop, a bounded number at
a time, and remembered credentials never wait for it."""

import asyncio
import base64
import statistics
import time
from pathlib import Path

import bcrypt

from observability.exporter.access import BasicAuth, Verdict
from observability.exporter.web_config import WebConfig


def hashed(password: str, cost: int) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost))


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_bad_input_is_refused_never_raised():
    auth = BasicAuth({"alice": hashed("s3cret", 4)})
    refused = [
        header("alice", "x" * 100),  # beyond bcrypt's 72 bytes: bcrypt 5 raises ValueError
        header("alice", "é" * 40),  # 80 bytes of UTF-8
        "Basic " + "\xe9" * 8,  # bytes outside ASCII where base64 belongs
        "Basic \xff\xfe\xfd\xfc",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),  # a password that is not UTF-8
        header("alice", "s3cret\x00"),
        "Basic",
        "Bearer s3cret",
        "",
    ]
    for authorization in refused:
        assert not auth.allows(authorization), authorization
    assert auth.allows(header("alice", "s3cret"))


def test_an_unknown_name_is_checked_at_the_highest_cost_of_the_real_hashes(monkeypatch):
    auth = BasicAuth({"alice": hashed("a", 4), "bob": hashed("b", 6)})
    checked = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, against: checked.append(against) or real(password, against))
    assert not auth.allows(header("mallory", "x"))
    assert int(checked[-1][4:6]) == 6


def test_an_unknown_name_takes_as_long_as_a_wrong_password():
    auth = BasicAuth({"alice": hashed("s3cret", 8)})

    def seconds(authorization):
        started = time.perf_counter()
        assert not auth.allows(authorization)
        return time.perf_counter() - started

    known = statistics.median(seconds(header("alice", f"wrong{i}")) for i in range(7))
    unknown = statistics.median(seconds(header(f"mallory{i}", "wrong")) for i in range(7))
    assert 0.5 < unknown / known < 2.0, (unknown, known)  # a generous band: cost 10 against 8 is 4x


def test_the_launchers_own_user_is_hashed_at_its_users_cost():
    config = WebConfig(source=Path("web.yml"), users={"alice": hashed("a", 11)})
    added = config.with_user("serve-with-monitoring", "pw")
    assert int(added.users["serve-with-monitoring"][4:6]) == 11


def test_checks_run_beside_the_event_loop_a_bounded_number_at_a_time():
    auth = BasicAuth({"alice": hashed("s3cret", 12)}, checkers=2, waiting=2)
    good = header("alice", "s3cret").encode()
    wrong = header("alice", "wrong").encode()

    async def flood():
        assert await auth.verdict(good) is Verdict.ALLOWED  # checked once, then remembered
        checks = [asyncio.create_task(auth.verdict(wrong)) for _ in range(10)]
        await asyncio.sleep(0)  # they start: four are admitted, the rest answered at once
        started = time.monotonic()
        await asyncio.sleep(0.01)
        lag = time.monotonic() - started - 0.01  # a loop held by bcrypt would wake 250 ms late
        remembered_started = time.monotonic()
        remembered = await auth.verdict(good)
        remembered_s = time.monotonic() - remembered_started
        return lag, remembered, remembered_s, await asyncio.gather(*checks)

    try:
        lag, remembered, remembered_s, verdicts = asyncio.run(flood())
    finally:
        auth.close()
    assert verdicts.count(Verdict.DENIED) == 4 and verdicts.count(Verdict.BUSY) == 6
    assert lag < 0.15, lag
    assert remembered is Verdict.ALLOWED and remembered_s < 0.05, remembered_s

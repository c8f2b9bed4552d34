"""A stopping child whose engine is gone and whose front end only waits for clients is not waited for."""

from launcher.vllm_server.lingering_front_end import LingeringFrontEnd


def test_expires_after_the_front_end_has_been_alone_for_a_second():
    lingering = LingeringFrontEnd(lambda pid: True)
    assert not lingering.expired(1, now=10.0)
    assert not lingering.expired(1, now=10.9)
    assert lingering.expired(1, now=11.0)


def test_the_clock_restarts_when_the_engine_is_seen_again():
    answers = iter([True, False, True, True])
    lingering = LingeringFrontEnd(lambda pid: next(answers))
    assert not lingering.expired(1, now=0.0)
    assert not lingering.expired(1, now=0.8)
    assert not lingering.expired(1, now=1.5)
    assert not lingering.expired(1, now=2.0)


def test_a_child_whose_engine_still_runs_never_expires():
    assert not LingeringFrontEnd(lambda pid: False).expired(1, now=100.0)

"""The state machine's table (launcher/states.py), and what the supervisor does with a change it forbids."""

import logging

import pytest

from launcher.states import TRANSITIONS, State, transition_allowed
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from tests.support.scripted_child import ScriptedChild


def test_every_state_has_a_row_naming_only_states():
    assert set(TRANSITIONS) == set(State)
    for targets in TRANSITIONS.values():
        assert targets <= set(State)


def test_failed_is_final():
    assert TRANSITIONS[State.FAILED] == frozenset()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (State.STOPPED, State.STARTING),
        (State.STARTING, State.HEALTHY),
        (State.HEALTHY, State.UNHEALTHY),
        (State.UNHEALTHY, State.STALLED),
        (State.STOPPING, State.BACKOFF),
        (State.BACKOFF, State.STARTING),
        (State.BACKOFF, State.STOPPED),
        (State.STALLED, State.FAILED),
        (State.FAILED, State.FAILED),  # staying put is no transition
    ],
)
def test_legal_transitions_are_allowed(old, new):
    assert transition_allowed(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (State.STOPPED, State.HEALTHY),
        (State.FAILED, State.STARTING),
        (State.FAILED, State.STOPPED),
        (State.BACKOFF, State.HEALTHY),
        (State.STARTING, State.BACKOFF),  # a run ends only through a stop of its group
    ],
)
def test_illegal_transitions_are_refused(old, new):
    assert not transition_allowed(old, new)


def test_an_illegal_transition_is_logged_loudly_and_still_taken(tmp_path, guard, caplog, illegal_transitions):
    child = SupervisedChild(
        ScriptedChild(tmp_path, "healthy"), RestartPolicy(1, 60.0, 0.05, 0.2), guard, ProbeRunner(), 1.0
    )
    assert child.state == State.STOPPED
    child.changed = False
    with caplog.at_level(logging.ERROR, logger="launcher.supervision.supervised_child"):
        child._set_state(State.HEALTHY)
    assert child.state == State.HEALTHY  # a production launcher keeps supervising
    assert child.changed
    errors = [r for r in caplog.records if "illegal state transition" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "STOPPED -> HEALTHY" in errors[0].getMessage()
    assert errors[0].stack_info  # where the bug is
    # The autouse fixture saw it too: that is what fails every other test. Expected here.
    assert len(illegal_transitions) == 1
    illegal_transitions.clear()

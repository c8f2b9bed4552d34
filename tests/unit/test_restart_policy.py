from launcher.supervision.restart_policy import Exit, RestartPolicy


def policy(**overrides):
    values = {"max_restarts": 3, "window_s": 100.0, "backoff_initial_s": 1.0, "backoff_max_s": 10.0}
    values.update(overrides)
    return RestartPolicy(**values)


def test_backoff_doubles_with_recent_restarts_and_is_capped():
    restart = policy(max_restarts=10)
    delays = []
    for second in range(6):
        delays.append(restart.backoff_s(second))
        restart.record_restart(second)
    assert delays == [1, 2, 4, 8, 10, 10]


def test_restarts_are_counted_within_the_window_only():
    restart = policy()
    for second in (0, 1, 2):
        restart.record_restart(second)
    assert not restart.may_restart(50)
    assert restart.may_restart(101.5)  # the first has left the window
    assert restart.backoff_s(500) == 1


def test_zero_restarts_means_give_up_at_once():
    assert not policy(max_restarts=0).may_restart(0)


def test_the_same_failure_twice_before_healthy_is_a_configuration_error():
    restart = policy()
    assert not restart.same_failure_twice(Exit(1, "boom", ever_healthy=False))
    assert restart.same_failure_twice(Exit(1, "boom", ever_healthy=False))


def test_different_failures_or_a_healthy_run_are_not():
    restart = policy()
    assert not restart.same_failure_twice(Exit(1, "a", ever_healthy=False))
    assert not restart.same_failure_twice(Exit(3, "b", ever_healthy=False))
    assert not restart.same_failure_twice(Exit(3, "c", ever_healthy=True))
    assert not restart.same_failure_twice(Exit(3, "d", ever_healthy=False))
    assert not restart.same_failure_twice(Exit(None, "timeout", ever_healthy=False))
    assert not restart.same_failure_twice(Exit(None, "timeout", ever_healthy=False))

"""A warning that repeats every few seconds is said once, counted, and summarised now and then."""

import logging

from launcher.supervision import repeated_warning
from launcher.supervision.repeated_warning import RepeatedWarning


def test_said_once_then_counted_then_summarised_then_recovered(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(repeated_warning.time, "monotonic", lambda: clock[0])
    warning = RepeatedWarning(logging.getLogger("test"), "cannot write /state/supervisor.json", 600)
    with caplog.at_level(logging.INFO, logger="test"):
        for _ in range(30):  # every 10 s for 5 minutes
            warning.happened("No space left on device")
            clock[0] += 10
        assert len(caplog.records) == 1
        clock[0] += 400
        warning.happened("No space left on device")
        warning.recovered()
        warning.recovered()  # said once only
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "cannot write /state/supervisor.json: No space left on device"
        " (repeats are counted, and summarised every 10 min)",
        "cannot write /state/supervisor.json: still failing, 31 times in 12 min; last: No space left on device",
        "cannot write /state/supervisor.json works again, after 31 failure(s)",
    ]

import os
import socket

from launcher.supervision.sd_notify import SystemdNotifier


def test_messages_reach_the_notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
        notifier.ready("serving")
        notifier.watchdog()
        notifier.stopping("bye")
        assert server.recv(4096) == b"READY=1\nSTATUS=serving"
        assert server.recv(4096) == b"WATCHDOG=1"
        assert server.recv(4096) == b"STOPPING=1\nSTATUS=bye"


def test_abstract_socket_names():
    name = f"swm-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert server.recv(4096) == b"STATUS=hello"


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_our_pid():
    assert SystemdNotifier({"WATCHDOG_USEC": "10000000"}).watchdog_interval_s == 5.0
    assert SystemdNotifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    assert SystemdNotifier({}).watchdog_interval_s is None


def test_without_systemd_nothing_happens():
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    notifier.ready("x")  # no socket, no error

from launcher.addresses import dial_host, host_port


def test_wildcards_are_dialled_on_loopback():
    assert dial_host("0.0.0.0") == "127.0.0.1"
    assert dial_host("::") == "::1"
    assert dial_host("10.1.2.3") == "10.1.2.3"


def test_ipv6_is_bracketed_once():
    assert host_port("::1", 8000) == "[::1]:8000"
    assert host_port("[::1]", 8000) == "[::1]:8000"
    assert host_port("127.0.0.1", 8000) == "127.0.0.1:8000"

from launcher.stack.prometheus_targets import advertised, fleet_target_groups, is_loopback
from observability.exporter.labels import default_hostname


def test_advertised_address_follows_the_bind_address_unless_told():
    assert advertised("127.0.0.1", 8000, None) == "127.0.0.1:8000"
    assert advertised("10.0.0.5", 8000, None) == "10.0.0.5:8000"
    assert advertised("0.0.0.0", 8000, "gpu-7.example") == "gpu-7.example:8000"
    assert advertised("::", 9402, "fd00::7") == "[fd00::7]:9402"
    assert not advertised("0.0.0.0", 8000, None).startswith("0.0.0.0")


def test_target_groups_carry_the_job_labels_of_the_shipped_alerts():
    # vLLM's also carries the exporter's `hostname`, which the efficiency rules join tokens and energy on.
    vllm = {"targets": ["h:8000"], "labels": {"job": "vllm", "hostname": default_hostname()}}
    groups = fleet_target_groups("h:8000", "h:9402")
    assert groups == [vllm, {"targets": ["h:9402"], "labels": {"job": "swm-exporter"}}]
    assert fleet_target_groups("h:8000", None) == [vllm]


def test_loopback_is_recognised():
    assert is_loopback("127.0.0.1:8000") and is_loopback("[::1]:8000") and not is_loopback("10.0.0.1:8000")

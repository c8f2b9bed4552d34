import pytest

from launcher.errors import EXIT_USAGE, UsageError
from launcher.settings.command_line import parse_command_line, split_argv
from launcher.settings.settings import load_settings
from observability.slo_objectives import DEFAULT_OBJECTIVES


def test_vllm_arguments_pass_through_untouched_and_in_order():
    argv = [
        "mistralai/Mistral-7B-v0.1",
        "--max-model-len",
        "2048",
        "--grace-period",
        "5",
        "--disable-log-requests",
        "--served-model-name",
        "a",
        "b",
        "--max-restarts=2",
        "-tp",
        "2",
    ]
    ours, theirs = split_argv(argv)
    assert ours == ["--grace-period", "5", "--max-restarts=2"]
    assert theirs == [
        "mistralai/Mistral-7B-v0.1",
        "--max-model-len",
        "2048",
        "--disable-log-requests",
        "--served-model-name",
        "a",
        "b",
        "-tp",
        "2",
    ]


def test_everything_after_double_dash_belongs_to_vllm():
    ours, theirs = split_argv(["m", "--", "--grace-period", "3"])
    assert ours == []
    assert theirs == ["m", "--grace-period", "3"]


def test_launcher_options_are_parsed_and_typed():
    parsed = parse_command_line(
        ["m", "--grace-period", "2.5", "--max-restarts", "0", "--state-dir", "/x", "--allow-usage-stats"]
    )
    assert parsed.launcher["grace_period"] == 2.5
    assert parsed.launcher["max_restarts"] == 0
    assert str(parsed.launcher["state_dir"]) == "/x"
    assert parsed.launcher["allow_usage_stats"] is True
    assert parsed.vllm_args == ("m",)


def test_options_not_given_are_absent_so_the_config_file_can_supply_them():
    assert parse_command_line(["m"]).launcher == {}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--grace-period", "soon"], "expected a number of seconds"),
        (["--grace-period", "-1"], "between 0 and 3600"),
        (["--max-restarts", "1.5"], "whole number"),
        (["--startup-timeout", "0"], "between 1 and"),
        (["--health-failures", "0"], "between 1 and"),
        (["--grace-period"], "needs a value"),
    ],
)
def test_invalid_values_are_one_line_usage_errors(argv, fragment):
    with pytest.raises(UsageError) as caught:
        parse_command_line(["m", *argv])
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_help_and_version():
    assert parse_command_line(["--help"]).wants_help
    assert parse_command_line(["m", "-h"]).wants_help
    assert parse_command_line(["--version"]).wants_version


@pytest.mark.parametrize("flag", ["--slo-ttft-p95", "--slo-itl-p99"])
def test_the_removed_p95_p99_options_point_at_the_one_slo_of_their_sli(flag):
    with pytest.raises(UsageError) as raised:
        parse_command_line(["m", flag, "3"])
    message = str(raised.value)
    assert message.startswith(f"{flag} was removed: ") and "\n" not in message
    assert ("--slo-ttft-threshold" if "ttft" in flag else "--slo-itl-threshold") in message
    with pytest.raises(UsageError):
        parse_command_line(["m", f"{flag}=3"])


def test_the_slo_options_are_the_objectives():
    settings = load_settings(parse_command_line(["m", "--slo-itl-threshold", "0.2", "--slo-ttft-target", "0.95"]))
    assert settings.objectives == DEFAULT_OBJECTIVES.changed("itl", threshold_s=0.2).changed("ttft", target=0.95)
    assert load_settings(parse_command_line(["m"])).objectives == DEFAULT_OBJECTIVES

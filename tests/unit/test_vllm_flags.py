import pytest

from launcher.errors import UsageError
from launcher.vllm_server.capabilities import parse_help
from launcher.vllm_server.flags import translate_args, translate_config
from tests.unit.conftest import HELP_0_32


def test_help_parsing_reads_arity_and_aliases():
    arity = parse_help(HELP_0_32.read_text())
    assert arity["--port"] == "1"
    assert arity["--api-key"] == "+"
    assert arity["--served-model-name"] == "+"
    assert arity["--disable-log-stats"] == "0"
    assert arity["--enable-log-requests"] == arity["--no-enable-log-requests"] == "0"
    assert arity["-asc"] == arity["--api-server-count"] == "1"
    assert arity["-sc"] == "1"
    assert "--disable-log-requests" not in arity


def test_seed_flag_is_translated_for_current_vllm(caps_0_32):
    assert translate_args(("m", "--disable-log-requests"), caps_0_32) == ("m", "--no-enable-log-requests")


def test_seed_flag_is_kept_where_vllm_still_has_it(caps_old):
    assert translate_args(("m", "--disable-log-requests"), caps_old) == ("m", "--disable-log-requests")


def test_seed_flag_is_dropped_where_neither_spelling_exists(caps_0_32):
    del caps_0_32.arity["--no-enable-log-requests"]
    assert translate_args(("m", "--disable-log-requests"), caps_0_32) == ("m",)


def test_disable_log_stats_is_refused_with_the_reason(caps_0_32):
    with pytest.raises(UsageError, match="removes every vllm: metric"):
        translate_args(("m", "--disable-log-stats"), caps_0_32)


def test_unknown_flags_are_left_for_vllm_to_reject(caps_0_32):
    assert translate_args(("m", "--no-such-flag"), caps_0_32) == ("m", "--no-such-flag")


def test_config_keys_follow_the_same_rules(caps_0_32):
    assert translate_config({"disable-log-requests": True, "port": 1}, caps_0_32) == {
        "enable-log-requests": False,
        "port": 1,
    }
    with pytest.raises(UsageError, match="disable_log_stats"):
        translate_config({"disable_log_stats": True}, caps_0_32)


def test_an_option_vllm_does_not_have_is_refused_before_anything_starts_with_the_closest(caps_0_32):
    from launcher.vllm_server.flags import check_known_flags

    with pytest.raises(UsageError) as raised:
        check_known_flags(("m", "--max-modle-len", "5"), {}, caps_0_32)
    assert str(raised.value) == (
        "vllm serve 0.32.0+cpu has no option --max-modle-len (did you mean --max-model-len, --model?); "
        "see `vllm serve --help=all`"
    )
    with pytest.raises(UsageError, match="did you mean --stall-timeout"):
        check_known_flags(("--stall-timeot", "3"), {}, caps_0_32, ours=("--stall-timeout",))
    with pytest.raises(UsageError, match="config file: key 'max_modle_len' is not an option"):
        check_known_flags(("m",), {"max_modle_len": 5}, caps_0_32)


def test_what_vllms_own_parser_accepts_is_not_refused(caps_0_32):
    from launcher.vllm_server.capabilities import VllmCapabilities
    from launcher.vllm_server.flags import check_known_flags

    check_known_flags(("m", "--max_model_len", "8", "--host=0.0.0.0", "-O3", "--port", "-1"), {}, caps_0_32)
    check_known_flags(("--anything",), {}, VllmCapabilities(version="0.5", arity={}))  # options not learned

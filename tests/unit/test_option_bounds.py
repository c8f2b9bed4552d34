"""Every numeric option has a lower and an upper bound, on the command line, in --config and in
`serve-with-monitoring exporter` alike, and a value outside them is one line that never repeats more than a
short part of it."""

import pytest

from launcher.commands.bench import parser as bench_parser
from launcher.commands.exporter import parser as exporter_parser
from launcher.commands.incidents import _parser as incidents_parser
from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.config_file import load_config_file
from launcher.settings.options import OPTIONS
from launcher.settings.value_parsers import SIZE_UNITS, Bounded, SizeBetween
from launcher.top.command import _parser as top_parser

NUMERIC_METAVARS = {"SECONDS", "N", "PORT", "RATIO", "SIZE"}


def looks_numeric(option) -> bool:
    """By what it is called, and by what it makes of a number: neither may slip past the check below."""
    if option.metavar in NUMERIC_METAVARS:
        return True
    for sample in ("5", "0.5", "512MB"):
        try:
            value = option.parse(sample) if option.parse else None
        except ValueError:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
    return False


NUMERIC = [option for option in OPTIONS if looks_numeric(option)]


def test_the_numeric_options_are_found():
    assert {"--collect-interval", "--scrape-interval", "--grace-period", "--prometheus-retention-size"} <= {
        option.flag for option in NUMERIC
    }


@pytest.mark.parametrize("option", NUMERIC, ids=lambda option: option.flag)
def test_each_numeric_option_declares_both_bounds(option):
    assert isinstance(option.parse, (Bounded, SizeBetween)), f"{option.flag}: give it parse.Bounded bounds"


def outside(parse) -> list[str]:
    if isinstance(parse, SizeBetween):
        low, high = SizeBetween.bytes_of(parse.low), SizeBetween.bytes_of(parse.high)
        return [f"{(low - 1) // SIZE_UNITS['KB']}KB", f"{high // SIZE_UNITS['KB'] + 1}KB"]
    step = 1 if parse.whole else (parse.low or 1) / 10
    below, above = (parse.low, parse.high) if parse.exclusive else (parse.low - step, parse.high + step)
    if parse.off and below == 0:
        below = step / 2
    return [f"{below:g}" if parse.whole else repr(below), f"{above:g}" if parse.whole else repr(above)]


def inside(parse) -> list[str]:
    if isinstance(parse, SizeBetween):
        return [parse.low, parse.high]
    if parse.exclusive:
        return [repr(parse.low + (parse.high - parse.low) / 1000), repr(parse.high - (parse.high - parse.low) / 1000)]
    return [f"{parse.low:g}", f"{parse.high:g}"] + (["0"] if parse.off else [])


@pytest.mark.parametrize("option", NUMERIC, ids=lambda option: option.flag)
def test_each_numeric_option_refuses_values_outside_its_bounds_in_one_line(option):
    for value in outside(option.parse):
        with pytest.raises(UsageError) as refused:
            parse_command_line(["m", option.flag, value])
        assert "\n" not in str(refused.value) and option.flag in str(refused.value)
    for value in inside(option.parse):
        parse_command_line(["m", option.flag, value])
    if option.default not in (None, ()):
        option.parse(str(option.default))


@pytest.mark.parametrize(("flag", "value"), [("--collect-interval", "0.000001"), ("--scrape-interval", "0.0001")])
def test_the_intervals_from_the_issue_are_refused(flag, value, tmp_path):
    with pytest.raises(UsageError, match=f"{flag}: expected a number of seconds between"):
        parse_command_line(["m", flag, value])
    config = tmp_path / "config.yaml"
    config.write_text(f"{flag.removeprefix('--')}: {value}\n")
    with pytest.raises(UsageError, match="expected a number of seconds between"):
        load_config_file(config)


def test_the_exporter_command_has_the_same_collect_interval_bounds():
    with pytest.raises(UsageError, match=r"between 0\.5 and 300"):
        exporter_parser().parse_args(["--collect-interval", "0.000001"])


@pytest.mark.parametrize("flag", ["--grace-period", "--stack", "--prometheus-retention-size", "--exporter-port"])
def test_an_error_shows_only_the_start_and_the_end_of_a_long_value(flag):
    with pytest.raises(UsageError) as refused:
        parse_command_line(["m", flag, "9" * 10_000 + "x"])
    assert len(str(refused.value)) < 400 and "\n" not in str(refused.value)


SUBCOMMANDS = {"exporter": exporter_parser, "bench": bench_parser, "top": top_parser, "incidents": incidents_parser}


def numeric_arguments():
    for name, make in SUBCOMMANDS.items():
        for action in make()._actions:
            parse = getattr(action.type, "parse", None)
            if parse is None:
                continue
            try:
                value = parse("5")
            except ValueError:
                continue
            if isinstance(value, (int, float)):
                yield pytest.param(make, action, parse, id=f"{name} {action.option_strings[0]}")


@pytest.mark.parametrize(("make", "action", "parse"), list(numeric_arguments()))
def test_each_numeric_option_of_a_subcommand_has_both_bounds(make, action, parse):
    assert isinstance(parse, Bounded), f"{action.option_strings[0]}: give it parse.Bounded bounds"
    for value in outside(parse):
        with pytest.raises(UsageError):
            make().parse_args([action.option_strings[0], value])

"""``bench.common.require_at_least``: the benches' check of their numeric options."""

from __future__ import annotations

import argparse

import pytest

from bench.common import require_at_least
from bench.photo_basin import main as photo_basin_main
from bench.photo_fit import main as photo_fit_main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--per-regime", type=int, default=None)
    parser.add_argument("--size", type=int, default=64)
    return parser


def test_values_at_the_bound_and_unset_options_pass():
    parser = _parser()
    require_at_least(parser, parser.parse_args(["--per-regime", "1"]), ("per_regime",))
    require_at_least(parser, parser.parse_args([]), ("per_regime", "size"))
    require_at_least(parser, parser.parse_args(["--size", "32"]), ("size",), 32)


def test_a_value_below_the_bound_names_the_option_the_bound_and_the_value(capsys):
    parser = _parser()
    with pytest.raises(SystemExit):
        require_at_least(parser, parser.parse_args(["--per-regime", "0"]), ("per_regime",))
    assert "--per-regime must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        require_at_least(parser, parser.parse_args(["--size", "16"]), ("size",), 32, " px")
    assert "--size must be >= 32 px, got 16" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (photo_basin_main, ["--rounds", "0"], "--rounds must be >= 1, got 0"),
        (photo_basin_main, ["--capture", "-1"], "--capture must be >= 0, got -1"),
        (photo_fit_main, ["--speed-size", "16"], "--speed-size must be >= 32 px, got 16"),
    ],
)
def test_the_benches_refuse_bad_options_before_any_work(main, argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err
